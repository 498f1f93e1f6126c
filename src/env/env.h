/* Conda environments of the people on this machine: where they are, what is in
 * them, their specs (export), a dated backup of every spec, pruning abandoned ones
 * into a restorable trash, and `conda clean --all` on the package caches.
 *
 * The library reads conda's on-disk format directly (conda itself is not needed):
 * an environment is a directory holding conda-meta/history; its conda packages are
 * conda-meta/<name>-<version>-<build>.json; pip packages are the *.dist-info /
 * *.egg-info in lib/python*\/site-packages that no conda record lists.
 *
 * Who calls it: the CLI running as the user (own environments), the CLI run by an
 * admin with --all-users, and the root daemon for the scheduled backup. Running as
 * root over other people's homes, it never follows a symlink (every path is walked
 * one component at a time with O_NOFOLLOW from a directory fd; a symlinked
 * environment, or a symlink inside one pointing at /etc, is reported or skipped,
 * never followed), bounds every read (ENV_MAX_* below), and writes into a user's
 * files only from a child process that has become that user (env_run_as_user).
 *
 * Conventions: functions return 0 (or a positive count) on success and -errno on
 * failure; ret_* out parameters are untouched on failure; destructors accept NULL.
 * The library does not log: problems with one environment or one file are carried
 * in the results (EnvInfo.error, EnvInfo.warnings, EnvList.errors) for the caller
 * to show. All times are CLOCK_REALTIME microseconds, 0 meaning "unknown". */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "basic/macro.h"

/* ---- limits on everything read from a user's files ---------------------------- */
#define ENV_MAX_ENVS_PER_USER 200          /* more are dropped with an EnvList error */
#define ENV_MAX_PACKAGES 20000             /* conda records (and pip packages) per env */
#define ENV_MAX_HISTORY_BYTES (16u << 20)  /* conda-meta/history */
#define ENV_MAX_RECORD_BYTES (32u << 20)   /* one conda-meta record (*.json) */
#define ENV_MAX_SMALL_FILE_BYTES (1u << 20) /* .condarc, environments.txt, manifests */
#define ENV_MAX_METADATA_BYTES (256u << 10) /* read of a METADATA / PKG-INFO header */
#define ENV_MAX_WALK_DEPTH 64              /* directory depth of a size walk */
#define ENV_MAX_WALK_ENTRIES 4000000       /* entries visited by one size walk */
#define ENV_MAX_USERS 65536                /* passwd entries considered by env_users_all */
#define ENV_MAX_CONDARC_ITEMS 256          /* envs_dirs / channels entries kept */
#define ENV_MAX_HISTORY_LINE_BYTES (1u << 20) /* a longer history line is skipped */
#define ENV_MAX_HISTORY_SPECS 100000u      /* spec list items read from one history */

/* The activate hook (src/env/hooks.c) writes the activation time here, relative
 * to the environment prefix: one line, decimal unix seconds ("1767607200\n").
 * Conda ignores files in conda-meta/ that do not end in .json (and history). */
#define ENV_LAST_ACTIVATED_FILE "conda-meta/gpukeeper-last-activated"

/* The per-user trash area, relative to the home directory. Each entry is
 * <trash>/<TRASH-ID>/ holding manifest.json and the moved prefix as "prefix/". */
#define ENV_TRASH_DIR ".local/share/gpukeeper/trash"

/* ---- flags and options shared by every call ----------------------------------- */
enum {
        /* Compute EnvInfo.size_bytes by walking the prefix (the slow part of a
         * listing; each inode counted once). */
        ENV_LOAD_SIZE = 1u << 0,
        /* Parse every conda-meta/NAME.json record and the pip metadata into
         * EnvInfo.packages, and the history into EnvInfo.history_specs: what
         * env_export needs. Without it, packages are known by file name only
         * (EnvInfo.n_packages counts them; python/torch/CUDA are still filled). */
        ENV_LOAD_PACKAGES = 1u << 1,
        /* Resolve symlinks in environment paths the normal way. Only for a user
         * looking at their own environments (the CLI sets it when euid == the
         * target uid): then a conda root symlinked to /data works. Never set it
         * when reading someone else's home as root. Inside a prefix, symlinks are
         * never followed either way. */
        ENV_FOLLOW_SYMLINKS = 1u << 2,
};

typedef struct EnvOptions {
        unsigned flags;             /* ENV_LOAD_*, ENV_FOLLOW_SYMLINKS */
        const char *system_condarc; /* NULL: "/etc/conda/.condarc" (tests point it elsewhere) */
        const char *proc_root;      /* NULL: "/proc" (process checks in prune) */
        /* Optional file remembering env sizes between runs (ENV_LOAD_SIZE), keyed by
         * the prefix's dev/ino and a change stamp (mtimes and ctimes of the prefix,
         * conda-meta, its history, bin/ and site-packages/, which conda and pip touch
         * when packages change); an entry is reused for at most
         * ENV_SIZE_CACHE_MAX_AGE_USEC, and not written for an env that changed less
         * than ENV_SIZE_CACHE_SETTLE_USEC before the walk (a coarse file system clock
         * could hide the next change). Files written into an env by other means are
         * noticed only when the entry ages out. The CLI
         * passes a file of the caller's own (root: /var/cache/gpukeeper/env-sizes.json,
         * a user: ~/.cache/gpukeeper/env-sizes.json); it is rewritten atomically,
         * mode 0600. An unreadable or corrupt cache is ignored. NULL: always walk. */
        const char *size_cache;
} EnvOptions;

#define ENV_SIZE_CACHE_MAX_AGE_USEC (UINT64_C(86400) * 1000000)
/* An env changed less than this before a walk is walked again next time. */
#define ENV_SIZE_CACHE_SETTLE_USEC (UINT64_C(2) * 1000000)

/* ---- users -------------------------------------------------------------------- */
typedef struct EnvUser {
        uid_t uid;
        gid_t gid;  /* primary group */
        char *name; /* login name */
        char *home; /* absolute home directory from passwd (tests: a temp dir) */
} EnvUser;

/* Fill *ret from passwd by uid or by name. -ENOENT when there is no such user,
 * -EINVAL when the entry has no absolute home. */
int env_user_from_uid(uid_t uid, EnvUser *ret);
int env_user_from_name(const char *name, EnvUser *ret);

/* Every passwd entry with 1000 <= uid and uid != 65534 (nobody), in passwd order,
 * at most ENV_MAX_USERS. *ret_n may be 0. Free with env_users_free. */
int env_users_all(EnvUser **ret, size_t *ret_n);

/* Build an EnvUser from explicit fields (copies the strings): tests use it for a
 * fake home in a temp dir with the current uid. */
int env_user_make(uid_t uid, gid_t gid, const char *name, const char *home, EnvUser *ret);

void env_user_done(EnvUser *u); /* frees the strings, leaves the struct reusable */
void env_users_free(EnvUser *users, size_t n);

/* Fork; in the child become uid/gid (supplementary groups: the user's groups from
 * getgrouplist, resolved before the fork; then setresgid, setresuid; the calls are
 * skipped when the process already is uid/gid with no privilege to drop), run
 * fn(userdata) and _exit with its result. fn runs in a separate process: memory it
 * writes is not seen by the caller (pass results through a pipe or the filesystem).
 * fn returns 0 or a negative errno (-1..-254).
 * Returns 0 when fn returned 0, fn's -errno when it failed, -errno of the
 * credential change when that failed in the child, -EPROTO when the child was
 * killed by a signal, -errno of fork/waitpid. */
int env_run_as_user(uid_t uid, gid_t gid, int (*fn)(void *userdata), void *userdata);

/* Drop the calling process to uid/gid (as env_run_as_user does in its child):
 * initgroups-equivalent, setresgid, setresuid, then verify root cannot be regained.
 * For callers that fork themselves to exec a program as the user (env create).
 * Returns 0 or -errno; after a failure the process must _exit. */
int env_become_user(uid_t uid, gid_t gid);

/* ---- inventory ---------------------------------------------------------------- */
typedef enum EnvLastUsedSource {
        ENV_LAST_USED_NONE = 0, /* unknown: JSON null */
        ENV_LAST_USED_HOOK,     /* ENV_LAST_ACTIVATED_FILE: "hook" */
        ENV_LAST_USED_ATIME,    /* access time of bin/python (its target): "atime" */
} EnvLastUsedSource;

/* "hook", "atime", or NULL for NONE. */
const char *env_last_used_source_to_string(EnvLastUsedSource s);

typedef struct EnvPackage {
        char *name;        /* conda: record name; pip: normalised (lowercase, _ . → -) */
        char *version;
        char *build;       /* conda build string; NULL for pip */
        char *channel;     /* canonical channel name (env_channel_canonical); NULL for pip */
        bool pip;
} EnvPackage;

typedef struct EnvInfo {
        char *name;        /* directory name, "base" for a conda root's own env */
        char *path;        /* absolute prefix as discovered (no symlinks unless ENV_FOLLOW_SYMLINKS) */
        /* Set when the environment could not be read: gone, unreadable, a symlink
         * not followed, not owned by the user outside the home, no conda-meta/history.
         * Then only name, path and owner fields below are meaningful. */
        char *error;
        uid_t owner_uid;   /* owner of the prefix directory */
        char *owner_name;  /* its login name, NULL when it has none */
        dev_t dev;         /* identity of the prefix directory (deduplication) */
        ino_t ino;
        bool is_base;      /* the base env of a conda / micromamba root */
        uint64_t size_bytes; /* st_blocks*512, each inode once; 0 without ENV_LOAD_SIZE */
        char *python_version; /* NULL when not installed */
        char *torch_version;  /* conda pytorch/torch record, else pip torch dist-info */
        char *cuda_version;   /* see env_info_load in inventory.c for the sources, in order */
        uint64_t created_usec;   /* first history block, else conda-meta's mtime */
        /* The newer of the hook's time and bin/python's atime (an atime in the
         * hook's second counts as the hook's); last_used_source says which.
         * 0 when last_used_source is NONE. */
        uint64_t last_used_usec;
        EnvLastUsedSource last_used_source;
        /* Conda records (by file name); with ENV_LOAD_PACKAGES: the valid records
         * plus the pip packages, i.e. the length of packages[]. */
        size_t n_packages;
        /* With ENV_LOAD_PACKAGES: conda records sorted by name, then pip packages
         * sorted by name. */
        EnvPackage *packages;
        size_t n_conda_packages;  /* the first n_conda_packages of packages[] */
        /* With ENV_LOAD_PACKAGES: the specs the user asked for (history), in conda's
         * first-request order, restricted to names still installed, as written
         * ("python=3.11", "conda-forge::numpy>=1.26"). */
        char **history_specs;
        size_t n_history_specs;
        /* The user's .condarc channels (merged search path), for export. */
        char **condarc_channels;
        size_t n_condarc_channels;
        /* Non-fatal problems: a record whose file name does not match its content
         * (skipped), a limit hit, an unreadable METADATA... */
        char **warnings;
        size_t n_warnings;
} EnvInfo;

void env_info_free(EnvInfo *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(EnvInfo *, env_info_free);

typedef struct EnvList {
        EnvUser user;       /* copy of the user the list is for */
        EnvInfo **envs;     /* discovery order, deduplicated by (dev, ino) */
        size_t n_envs;
        char **envs_dirs;   /* effective envs_dirs: .condarc ones first, then defaults */
        size_t n_envs_dirs;
        char **channels;    /* .condarc channels (merged search path, most specific first) */
        size_t n_channels;
        char **errors;      /* per-user problems: unreadable home / .condarc / environments.txt, limits */
        size_t n_errors;
        unsigned flags;     /* EnvOptions.flags it was listed with: env_lists_load_sizes opens
                             * the paths the same way (ENV_FOLLOW_SYMLINKS) */
} EnvList;

void env_list_free(EnvList *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(EnvList *, env_list_free);

/* Find and inventory every environment of `user`:
 *   1. base envs of the roots ~/miniconda3, ~/anaconda3, ~/miniforge3, ~/mambaforge,
 *      ~/micromamba, ~/.local/share/mamba (when they hold conda-meta/history);
 *   2. children of the envs_dirs: .condarc envs_dirs (search path /etc/conda/.condarc
 *      (o->system_condarc), ~/.config/conda/.condarc, ~/.conda/.condarc, ~/.condarc;
 *      ~ and $HOME expanded), then <root>/envs for each root, ~/.conda/envs; children
 *      sorted by name, a child without conda-meta/history is not an env and skipped;
 *   3. every line of ~/.conda/environments.txt not found above; a listed path that is
 *      gone or unreadable becomes an EnvInfo with .error set.
 * Duplicates (same dev/ino) are dropped. At most ENV_MAX_ENVS_PER_USER.
 * Returns 0 even when some or all envs have errors; -ENOMEM; -errno when the
 * home itself cannot be opened; -EPERM when the directory the home path leads
 * to (symlinks followed) is not owned by user->uid. Every function here that
 * takes a user opens the home that way and fails the same. */
int env_list_user(const EnvUser *user, const EnvOptions *o, EnvList **ret);

/* env_list_user for several users at once (`env list --all-users`, backup):
 * ret[i] is the list of users[i]; a user whose home cannot be opened, or is not
 * theirs, gets a list with no envs and one error. Sizes (ENV_LOAD_SIZE) of all
 * envs are computed by a few threads in parallel. Returns 0 or -ENOMEM. Free with env_lists_free. */
int env_list_users(const EnvUser *users, size_t n_users, const EnvOptions *o, EnvList ***ret);
void env_lists_free(EnvList **lists, size_t n);

/* Sizes of every env without error in lists listed without ENV_LOAD_SIZE, walked
 * by a few threads in parallel (the walk is syscall-bound: one fstatat per file),
 * through o->size_cache when set. Each list's envs are opened with its own
 * flags. Problems become warnings of the env; returns 0 or -ENOMEM. */
int env_lists_load_sizes(EnvList *const *lists, size_t n_lists, const EnvOptions *o);

/* Resolve NAME|PATH of `user` to one environment as `gpukeeper env export/hook`
 * take it: an argument containing '/' is a path (matched by dev/ino against the
 * discovered envs, else loaded directly when it holds conda-meta/history); otherwise
 * the first env with that name in discovery order ("base" is the first root's).
 * Returns 0, -ENOENT when there is none, -errno from loading. A found env with
 * .error set is returned as is (caller reports it). */
int env_find(const EnvUser *user, const char *name_or_path, const EnvOptions *o, EnvInfo **ret);

/* The JSON object `env list --json` and MANIFEST.json use for one env:
 * {"name","path","owner","uid","is_base","size_bytes","python","torch","cuda",
 *  "created" (unix seconds or null),"last_used" (unix seconds or null),
 *  "last_used_source" ("hook"|"atime"|null),"packages" (count),"error" (string|null),
 *  "warnings" [strings]}. NULL on ENOMEM. */
json_t *env_info_to_json(const EnvInfo *e);

/* Every string from a user's files or names that goes into JSON goes through
 * this: a JSON string of s when s is valid UTF-8, else of s with each invalid
 * byte written as \xNN (utf8_escape_invalid), so that a name of arbitrary bytes
 * never makes jansson fail; JSON null for a NULL s. NULL only on ENOMEM. */
json_t *env_json_string(const char *s);

/* Canonical channel name, as conda prints it in exports (conda's
 * Channel.canonical_name, without custom_channels / channel_alias settings):
 *   https://conda.anaconda.org/<ch>[/label/x]/<subdir>  → <ch>[/label/x]
 *   https://repo.anaconda.com/pkgs/{main,r,msys2,free,pro}[/<subdir>] → defaults
 *   a bare name ("conda-forge", "conda-forge/linux-64") → the name without subdir
 *   any other URL (mirror, file://) → the URL without a trailing subdir and slash
 * Subdirs: noarch, linux-*, osx-*, win-*, zos-*, emscripten-*, wasi-*. NULL on ENOMEM. */
char *env_channel_canonical(const char *channel);

/* ---- export ------------------------------------------------------------------- */
typedef enum EnvExportMode {
        ENV_EXPORT_BUILDS = 0,   /* conda env export: name=version=build */
        ENV_EXPORT_NO_BUILDS,    /* conda env export --no-builds: name=version */
        ENV_EXPORT_FROM_HISTORY, /* conda env export --from-history */
} EnvExportMode;

/* Write the environment.yml for `env` (loaded with ENV_LOAD_PACKAGES) to f:
 *   name: <name>
 *   channels:
 *     - <conda's rule: the .condarc channels ("defaults" when it has none),
 *        then each record's canonical channel not yet listed, in name order,
 *        inserted at the front; a .condarc channel keeps its place>
 *   dependencies:
 *     - name=version[=build]          (conda records sorted by name)
 *     - pip:
 *         - name==version              (pip packages sorted by name; omitted when none)
 *   prefix: <path>
 * FROM_HISTORY lists history_specs instead and, as conda does, only the .condarc
 * channels (or "defaults"), and no pip section.
 * Every value is a YAML scalar: plain where a YAML emitter writes it plain (all
 * ordinary names, versions, specs, channels, paths: the text is conda's), else
 * double-quoted with escapes, so a name holding a newline or YAML syntax stays
 * one value. Bytes that are not UTF-8 are written \xNN (read back as U+00NN).
 * Deliberate differences from conda (for the man page):
 *   - specs in --from-history are printed as the user wrote them; conda prints
 *     them re-rendered through MatchSpec ("numpy>=1.2" becomes
 *     "numpy[version='>=1.2']");
 *   - channel names ignore .condarc custom_channels / channel_alias: a mirror URL
 *     is printed as its URL;
 *   - no "variables:" section (conda env config vars are not read);
 *   - the "pypi" pseudo-channel records conda keeps for pip packages are not read,
 *     site-packages metadata is;
 *   - a value that needs quotes is double-quoted (conda may single-quote it),
 *     one that YAML 1.1 would read as a boolean or number ("yes", "1.0") too,
 *     and long values are not folded at 80 columns.
 * Returns 0, -EINVAL for an env with .error, -EIO when writing fails. */
int env_export(const EnvInfo *env, EnvExportMode mode, FILE *f);

/* ---- history ------------------------------------------------------------------ */
/* Requested specs from the text of a conda-meta/history file, in conda's order
 * (History.get_requested_specs_map): blocks in order; "# install/update/create
 * specs:" set the spec for its name (a name already present keeps its position),
 * "# remove/uninstall specs:" drop the name, "# neutered specs:" replace it.
 * Spec lists: conda's python list ['a', 'b'], micromamba's ["a","b"], conda < 4.5
 * bare comma lists ("python >=3.5,<3.6,numpy": a piece starting with a version
 * operator belongs to the previous spec). Not filtered by what is installed.
 * Bounded: a line longer than ENV_MAX_HISTORY_LINE_BYTES is skipped, items past
 * ENV_MAX_HISTORY_SPECS (in the whole file) are ignored, and either appends a
 * message to warnings (when not NULL); the time taken is linear in len.
 * Returns the number of specs (≥0) or -ENOMEM. */
int env_history_specs(const char *text, size_t len, char ***ret, size_t *ret_n, char ***warnings,
                      size_t *n_warnings);

/* The package name of a spec: "conda-forge::NumPy >=1.2" → "numpy". NULL on ENOMEM
 * or when the spec has no name. */
char *env_spec_name(const char *spec);

/* Read conda-meta/history of `env` (as env_list_user would: no symlinks, at most
 * ENV_MAX_HISTORY_BYTES, verifying it is the same dev/ino) into a NUL-terminated
 * buffer. For the backup. */
int env_read_history(const EnvUser *user, const EnvInfo *env, const EnvOptions *o, char **ret,
                     size_t *ret_len);

/* ---- backup ------------------------------------------------------------------- */
/* Write <dir>/gpukeeper-envs-YYYYMMDD-HHMMSS.tar.gz (local time of now_usec) holding,
 * for every user and env without error:
 *   USER/ENVNAME/environment.yml         (ENV_EXPORT_NO_BUILDS)
 *   USER/ENVNAME/environment-builds.yml  (ENV_EXPORT_BUILDS)
 *   USER/ENVNAME/history                 (copy of conda-meta/history)
 * and MANIFEST.json: {"version":1,"created":<unix s>,"host":..., "users":[{"user",
 * "uid","home","errors":[...],"envs":[env_info_to_json + "archive_dir"]}]}.
 * ENVNAME is the env name made safe for a path ([A-Za-z0-9._+-], others '_', no
 * leading '.'); a second env with the same name gets "-2", "-3"...
 * The archive is written to a temp file in dir and renamed into place, mode 0600
 * (owned by whoever runs it: root for the daemon). dir must exist.
 * Returns 0 and the archive path, -errno (-EEXIST when the name is taken). */
int env_backup(const EnvUser *users, size_t n_users, const char *dir, const EnvOptions *o,
               uint64_t now_usec, char **ret_path);

/* Keep the `keep` newest gpukeeper-envs-*.tar.gz in dir (by the name's timestamp),
 * delete the others. Returns the number deleted or -errno. */
int env_backup_prune(const char *dir, unsigned keep);

/* ---- processes ---------------------------------------------------------------- */
/* Is any process of the system inside `prefix` (an absolute path without
 * symlinks): /proc/<pid>/exe or /proc/<pid>/cwd equal to it or below it?
 * Processes whose links cannot be read (another user's, when not root) are not
 * seen. Returns 1 and the pid, 0 when none, -errno when proc_root cannot be read. */
int env_find_process_inside(const char *proc_root, const char *prefix, pid_t *ret_pid);

/* ---- prune / trash ------------------------------------------------------------ */
typedef struct EnvPruneItem {
        char *name;
        char *path;
        dev_t dev; /* identity checked again right before the move */
        ino_t ino;
        uid_t uid; /* owner of the prefix */
        uint64_t size_bytes;     /* what moving it out frees once the trash is emptied */
        uint64_t last_used_usec;
        EnvLastUsedSource last_used_source;
        /* NULL: eligible. Otherwise why it stays: "in use by process 1234",
         * "base environment", "no record of last use", "used 3d ago"... */
        char *skip_reason;
        pid_t busy_pid; /* > 0 when skipped for a running process */
} EnvPruneItem;

typedef struct EnvPrunePlan {
        EnvPruneItem *items; /* every env of the user without .error, discovery order */
        size_t n_items;
        uint64_t eligible_bytes; /* sum of size_bytes of eligible items */
        size_t n_eligible;
        char **errors;       /* envs with .error and per-user errors from discovery */
        size_t n_errors;
} EnvPrunePlan;

void env_prune_plan_free(EnvPrunePlan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(EnvPrunePlan *, env_prune_plan_free);

/* Plan a prune of `user`'s envs not used for `unused_for_usec` before now_usec.
 * An env is eligible when it has a last-use time (hook or atime) older than
 * now - unused_for, is not a base env, and no process is inside it. Sizes are
 * always computed. Returns 0 or -errno (as env_list_user). */
int env_prune_plan(const EnvUser *user, uint64_t unused_for_usec, uint64_t now_usec,
                   const EnvOptions *o, EnvPrunePlan **ret);

/* Move one eligible item to ~/ENV_TRASH_DIR/<TRASH-ID>/prefix with
 * ~/ENV_TRASH_DIR/<TRASH-ID>/manifest.json {"id","name","original_path","uid",
 * "trashed_at" (unix s),"size_bytes","version":1}, and remove the path's line from
 * ~/.conda/environments.txt — all as the user (env_run_as_user). Right before the
 * move it checks again that the path is the same directory (dev/ino) and that no
 * process is inside. TRASH-ID is "<safe name>-YYYYMMDD-HHMMSS" (+"-N" when taken).
 * Returns 0 and the id; -EXDEV when the prefix is on another filesystem than the
 * home (refused, nothing moved); -EBUSY when a process is inside; -ESTALE when the
 * path is no longer the planned directory; -EINVAL for an ineligible item; -errno. */
int env_prune(const EnvUser *user, const EnvPruneItem *item, const EnvOptions *o,
              uint64_t now_usec, char **ret_trash_id);

typedef struct EnvTrashEntry {
        char *id;
        char *name;
        char *original_path;
        uint64_t trashed_usec;
        uint64_t size_bytes;
} EnvTrashEntry;

void env_trash_entries_free(EnvTrashEntry *e, size_t n);

/* Entries of the user's trash, oldest first; entries without a readable manifest
 * are skipped. Returns 0 (also when there is no trash) or -errno. */
int env_trash_list(const EnvUser *user, const EnvOptions *o, EnvTrashEntry **ret,
                   size_t *ret_n);

/* Move trash entry `trash_id` back to its original path and add the path to
 * ~/.conda/environments.txt again, as the user; the emptied trash entry is removed.
 * Returns 0 and the restored path; -ENOENT for an unknown id; -EEXIST when the
 * original path exists again (nothing moved); -EINVAL for an id that is not a
 * plain name; -EXDEV; -errno. */
int env_restore(const EnvUser *user, const char *trash_id, const EnvOptions *o,
                char **ret_path);

/* Remove the trash entries `ids` of `user` for good (what frees the disk a
 * prune only moved), as the user (env_run_as_user) and below the trash
 * directory's fd without following any symlink; a directory the user made
 * read-only is made writable first, as rm -rf does for its owner. Returns
 * 0 when all went, else the first -errno (the rest are still attempted):
 * -ENOENT for an id not in the trash, -EINVAL (nothing removed) for an id
 * that is not a plain name. Entries are chosen by the caller, from
 * env_trash_list (by age for the daemon's sweep). */
int env_trash_remove(const EnvUser *user, char *const *ids, size_t n_ids, const EnvOptions *o);

/* ---- package caches (conda clean --all) ---------------------------------------- */
typedef enum EnvCleanKind {
        ENV_CLEAN_TARBALL,     /* pkgs/ *.tar.bz2, *.conda */
        ENV_CLEAN_INDEX_CACHE, /* pkgs/cache/ */
        ENV_CLEAN_PACKAGE,     /* extracted dir none of whose regular files has st_nlink > 1 */
        ENV_CLEAN_TEMP,        /* *.c~, *.trash, *.tmp, .trash/ */
        ENV_CLEAN_LOG,         /* .logs/ */
} EnvCleanKind;

/* "tarball", "index-cache", "package", "temp", "log". */
const char *env_clean_kind_to_string(EnvCleanKind k);

typedef struct EnvCleanItem {
        char *path;
        EnvCleanKind kind;
        uint64_t bytes; /* st_blocks*512, each inode once within the item */
} EnvCleanItem;

typedef struct EnvCleanPlan {
        char **pkgs_dirs;   /* package caches found and writable by the user */
        size_t n_pkgs_dirs;
        EnvCleanItem *items;
        size_t n_items;
        uint64_t total_bytes;
        char **errors;
        size_t n_errors;
} EnvCleanPlan;

void env_clean_plan_free(EnvCleanPlan *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(EnvCleanPlan *, env_clean_plan_free);

/* What `conda clean --all` would remove in user's package caches: <root>/pkgs for
 * the conda / micromamba roots env_list_user knows (~/miniconda3, ~/anaconda3,
 * ~/miniforge3, ~/mambaforge, ~/micromamba, ~/.local/share/mamba), ~/.conda/pkgs. A cache counts when it is a real
 * directory (no symlinks) owned by the user and writable by them. Extracted
 * package dirs are those holding info/index.json. Read-only: the dry run. */
int env_clean_plan(const EnvUser *user, const EnvOptions *o, EnvCleanPlan **ret);

/* Remove every item of `plan`, as the user (no symlink followed while removing).
 * Returns 0 when all went, else the first -errno (the rest are still attempted). */
int env_clean_apply(const EnvUser *user, const EnvCleanPlan *plan, const EnvOptions *o);
