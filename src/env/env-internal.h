/* Helpers shared by the files of src/env/ and not part of its API: string
 * vectors, bounded file reads, symlink-free path walking, the size walk and a
 * symlink-safe recursive removal. Everything here keeps the env_ prefix. */
#pragma once

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "env/env.h"

/* String vectors: basic/strv.h. */

/* ---- bounded reads ---- */


/* Open relpath below dirfd without following any symlink (each component is
 * opened with O_NOFOLLOW; "." / ".." / empty components are -EINVAL). A
 * symlink on the way is -ELOOP. */
int env_open_dir_beneath(int dirfd, const char *relpath, int *ret_fd);
int env_open_file_beneath(int dirfd, const char *relpath, int *ret_fd);
int env_read_file_beneath(int dirfd, const char *relpath, size_t max, char **ret,
                          size_t *ret_len);

/* Open relpath below dirfd as a directory, creating (with `mode`) each
 * missing component on the way, like mkdir -p; no symlink is followed: one on
 * the way fails with -ELOOP, as when reading beneath a directory. */
int env_mkdir_beneath(int dirfd, const char *relpath, mode_t mode, int *ret_fd);

/* Open the absolute directory path of `user`'s data for reading:
 * with ENV_FOLLOW_SYMLINKS a plain open; otherwise walked without symlinks from
 * homefd when below the home (its passwd path or real path), else from "/", and
 * then it must be owned by the user. -ELOOP for a symlink on the way, -EPERM for
 * a foreign owner outside the home, -EINVAL for a relative or odd path. */
int env_open_user_dir(const EnvUser *user, int homefd, const char *path, unsigned flags,
                      int *ret_fd);

/* The home of `user` as a directory fd. The passwd path is followed (symlinks
 * included: /home may be a link to /data/home), but the directory reached must
 * be owned by user->uid, else -EPERM: a user who swapped their home for a
 * symlink to someone else's directory gets nothing read from it. */
int env_open_home(const EnvUser *user, int *ret_fd);

/* ---- walking ---- */

/* A directory stream over a close-on-exec duplicate of dirfd, which stays
 * the caller's (the two share the file offset). Returns 0 or -errno. */
int env_opendir_dup(int dirfd, DIR **ret);

/* Disk usage below (and including) the directory dirfd: st_blocks*512, each inode
 * once, symlinks not followed, at most ENV_MAX_WALK_DEPTH deep and
 * ENV_MAX_WALK_ENTRIES entries (then -E2BIG with the partial sum in *ret).
 * skip: NULL, or NULL-terminated names of entries directly in dirfd not to count
 * (a conda root's envs/ and pkgs/ are not part of its base env). */
int env_disk_usage(int dirfd, const char *const *skip, uint64_t *ret);

/* Remove dirfd/name recursively without following symlinks. */
int env_rm_rf_at(int dirfd, const char *name);

/* ---- misc ---- */

/* Does name end with suffix? */
bool env_endswith(const char *name, const char *suffix);

/* qsort/bsearch comparator for an array of char *: strcmp of the strings. */
int env_cmp_strp(const void *a, const void *b);

/* An env name usable as one path component: [A-Za-z0-9._+-], others '_', no
 * leading '.', at most 100 bytes, "env" when empty. */
char *env_safe_name(const char *name);

/* Write f's string to the path atomically (tmp in the same dir, fsync, rename). */
int env_write_file_atomic_at(int dirfd, const char *name, const char *data, size_t len,
                             mode_t mode);

/* Load one environment at an absolute path. name may be NULL (derived).
 * condarc_channels are copied into the result. Never fails for problems with the
 * env itself (those land in .error): only -ENOMEM. */
int env_info_load(const EnvUser *user, int homefd, const char *path, const char *name,
                  bool is_base, char *const *condarc_channels, size_t n_condarc_channels,
                  unsigned flags, EnvInfo **ret);

/* Open lib/python3.X/site-packages below envfd (the first one found); ret_rel
 * gets "lib/python3.X/site-packages". -ENOENT when there is none. */
int env_open_site_packages(int envfd, char **ret_rel, int *ret_fd);

/* Fill e->size_bytes of an env loaded without ENV_LOAD_SIZE: reopen its path,
 * check it is still the same directory, walk it. Problems become warnings;
 * returns 0 or -ENOMEM. Thread-safe for distinct e.
 * With ret_stamp: *ret_stamp gets the env's change stamp (m/ctimes of the prefix,
 * conda-meta, history, bin and site-packages), and when it equals stamp_cached
 * the walk is skipped and size_cached used; *ret_newest_usec gets the newest of
 * their mtimes and ctimes (CLOCK_REALTIME µs). */
int env_info_load_size(const EnvUser *user, int homefd, EnvInfo *e, unsigned flags,
                       const char *stamp_cached, uint64_t size_cached, char **ret_stamp,
                       uint64_t *ret_newest_usec);

/* The conda roots searched below a home, relative to it. */
extern const char *const env_conda_roots[];
extern const size_t env_n_conda_roots;
