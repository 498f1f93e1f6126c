/* Finding a user's environments the way conda does: the base envs of conda /
 * micromamba roots under the home, the children of every envs_dirs entry
 * (.condarc first, then the defaults) and ~/.conda/environments.txt, which conda
 * appends every prefix it creates to. Also the .condarc reader (libyaml; only
 * envs_dirs and channels matter here) and the JSON form of an inventory entry. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "basic/fileio.h"
#include "basic/strv.h"
#include "basic/time-util.h"
#include "basic/utf8.h"
#include "env/env-internal.h"

const char *const env_conda_roots[] = {
        "miniconda3", "anaconda3", "miniforge3", "mambaforge", "micromamba", ".local/share/mamba",
};
const size_t env_n_conda_roots = ELEMENTSOF(env_conda_roots);

void env_list_free(EnvList *l)
{
        if (!l)
                return;
        env_user_done(&l->user);
        for (size_t i = 0; i < l->n_envs; i++)
                env_info_free(l->envs[i]);
        free(l->envs);
        strv_free_n(l->envs_dirs, l->n_envs_dirs);
        strv_free_n(l->channels, l->n_channels);
        strv_free_n(l->errors, l->n_errors);
        free(l);
}

/* "~", "~/x", "$HOME/x", "${HOME}/x" → below the home; anything else as is. */
static char *expand_home(const char *s, const char *home)
{
        const char *rest = NULL;
        char *out;

        if (s[0] == '~' && (s[1] == '\0' || s[1] == '/'))
                rest = s + 1;
        else if (strncmp(s, "$HOME", 5) == 0 && (s[5] == '\0' || s[5] == '/'))
                rest = s + 5;
        else if (strncmp(s, "${HOME}", 7) == 0 && (s[7] == '\0' || s[7] == '/'))
                rest = s + 7;
        if (!rest)
                return strdup(s);
        if (asprintf(&out, "%s%s", home, rest) < 0)
                return NULL;
        return out;
}

/* Lexically drop "." and empty components and resolve "..", in place, for an
 * absolute path: "/a/./b/../c/" → "/a/c". No filesystem access. */
static void normalise_path(char *p)
{
        char *out = p, *in = p;

        while (*in) {
                char *end;
                size_t len;

                while (*in == '/')
                        in++;
                if (!*in)
                        break;
                end = strchrnul(in, '/');
                len = (size_t)(end - in);
                if (len == 1 && in[0] == '.') {
                } else if (len == 2 && in[0] == '.' && in[1] == '.') {
                        while (out > p && *--out != '/')
                                ;
                } else {
                        *out++ = '/';
                        memmove(out, in, len);
                        out += len;
                }
                in = end;
        }
        if (out == p)
                *out++ = '/';
        *out = '\0';
}

/* Strip trailing slashes (but keep "/"). */
static void strip_slashes(char *p)
{
        size_t n = strlen(p);

        while (n > 1 && p[n - 1] == '/')
                p[--n] = '\0';
}

/* Append the scalars of a YAML sequence node to v (deduplicated, bounded). */
static int add_sequence(yaml_document_t *doc, yaml_node_t *seq, const EnvUser *user, bool paths,
                        char ***v, size_t *n)
{
        for (yaml_node_item_t *it = seq->data.sequence.items.start;
             it < seq->data.sequence.items.top; it++) {
                yaml_node_t *item = yaml_document_get_node(doc, *it);
                char *s;

                if (!item || item->type != YAML_SCALAR_NODE || *n >= ENV_MAX_CONDARC_ITEMS)
                        continue;
                s = paths ? expand_home((const char *)item->data.scalar.value, user->home)
                          : strdup((const char *)item->data.scalar.value);
                if (!s)
                        return -ENOMEM;
                if (paths)
                        strip_slashes(s);
                if (s[0] == '\0' || (paths && s[0] != '/') || strv_contains(*v, *n, s)) {
                        free(s);
                        continue;
                }
                if (strv_consume(v, n, s) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Parse one .condarc text. A file that is not YAML is reported, not fatal. */
static int parse_condarc(const char *text, size_t len, const EnvUser *user, char ***envs_dirs,
                         size_t *n_envs_dirs, char ***channels, size_t *n_channels)
{
        yaml_parser_t parser;
        yaml_document_t doc;
        yaml_node_t *root;
        int r = 0;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
        if (!yaml_parser_load(&parser, &doc)) {
                yaml_parser_delete(&parser);
                return -EBADMSG;
        }
        root = yaml_document_get_root_node(&doc);
        if (root && root->type == YAML_MAPPING_NODE) {
                for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
                     r >= 0 && p < root->data.mapping.pairs.top; p++) {
                        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
                        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
                        const char *key;

                        if (!k || !v || k->type != YAML_SCALAR_NODE || v->type != YAML_SEQUENCE_NODE)
                                continue;
                        key = (const char *)k->data.scalar.value;
                        if (strcmp(key, "envs_dirs") == 0)
                                r = add_sequence(&doc, v, user, true, envs_dirs, n_envs_dirs);
                        else if (strcmp(key, "channels") == 0)
                                r = add_sequence(&doc, v, user, false, channels, n_channels);
                }
        }
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        return r;
}

/* Read the .condarc search path, most specific file first (conda's sequence
 * merge: values from later files in the search path come first, deduplicated). */
static int read_condarcs(const EnvUser *user, int homefd, const EnvOptions *o, EnvList *l,
                         char ***channels, size_t *n_channels)
{
        static const char *const user_files[] = {
                ".condarc",
                ".conda/.condarc",
                ".config/conda/.condarc",
        };
        const char *system = o && o->system_condarc ? o->system_condarc : "/etc/conda/.condarc";
        int r;

        for (size_t i = 0; i <= ELEMENTSOF(user_files); i++) {
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                const char *shown;

                if (i < ELEMENTSOF(user_files)) {
                        shown = user_files[i];
                        r = env_read_file_beneath(homefd, user_files[i], ENV_MAX_SMALL_FILE_BYTES,
                                                  &text, &len);
                } else {
                        _cleanup_close_ int fd = open(system, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

                        shown = system;
                        r = fd < 0 ? negative_errno()
                                   : read_full_fd(fd, ENV_MAX_SMALL_FILE_BYTES, &text, &len);
                }
                if (r == -ENOENT)
                        continue;
                if (r == -ENOMEM)
                        return r;
                if (r >= 0) {
                        r = parse_condarc(text, len, user, &l->envs_dirs, &l->n_envs_dirs, channels,
                                          n_channels);
                        if (r == -ENOMEM)
                                return r;
                }
                if (r < 0 && strv_pushf(&l->errors, &l->n_errors, "%s: %s", shown,
                                            r == -EBADMSG ? "not valid YAML, ignored"
                                            : r == -ELOOP ? "a symbolic link, not followed"
                                                          : strerror(-r)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

typedef struct Discovery {
        const EnvUser *user;
        const EnvOptions *o;
        int homefd;
        unsigned flags;
        EnvList *list;
        char **channels;
        size_t n_channels;
        char **seen_paths; /* paths already looked at (strings), to skip cheaply */
        size_t n_seen_paths;
        bool full;
} Discovery;

static bool seen_identity(const Discovery *d, dev_t dev, ino_t ino)
{
        for (size_t i = 0; i < d->list->n_envs; i++)
                if (!d->list->envs[i]->error && d->list->envs[i]->dev == dev &&
                    d->list->envs[i]->ino == ino)
                        return true;
        return false;
}

/* Look at one candidate prefix. quiet_missing: a default location that does not
 * exist or is not an env is not worth reporting. */
static int consider(Discovery *d, const char *path, const char *name, bool is_base,
                    bool quiet_missing)
{
        _cleanup_(env_info_freep) EnvInfo *e = NULL;
        _cleanup_close_ int fd = -1;
        EnvInfo **nv;
        struct stat st;
        int r;

        if (d->full || strv_contains(d->seen_paths, d->n_seen_paths, path))
                return 0;
        r = strv_push(&d->seen_paths, &d->n_seen_paths, path);
        if (r < 0)
                return r;

        /* Cheap identity check first: environments.txt repeats what envs_dirs found. */
        r = env_open_user_dir(d->user, d->homefd, path, d->flags, &fd);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                if (fstat(fd, &st) < 0)
                        return negative_errno();
                if (seen_identity(d, st.st_dev, st.st_ino))
                        return 0;
                if (quiet_missing && (fstatat(fd, "conda-meta/history", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                                      !S_ISREG(st.st_mode)))
                        return 0;
        } else if (quiet_missing && (r == -ENOENT || r == -ENOTDIR))
                return 0;

        r = env_info_load(d->user, d->homefd, path, name, is_base, d->channels, d->n_channels,
                          d->flags, &e);
        if (r < 0)
                return r;
        if (d->list->n_envs >= ENV_MAX_ENVS_PER_USER) {
                d->full = true;
                return strv_pushf(&d->list->errors, &d->list->n_errors,
                                      "more than %d environments, the rest not listed",
                                      ENV_MAX_ENVS_PER_USER);
        }
        nv = realloc(d->list->envs, sizeof(EnvInfo *) * (d->list->n_envs + 1));
        if (!nv)
                return -ENOMEM;
        d->list->envs = nv;
        d->list->envs[d->list->n_envs++] = TAKE_PTR(e);
        return 0;
}

/* Every child of an envs dir, sorted by name; a symlinked child is reported. */
static int scan_envs_dir(Discovery *d, const char *dir)
{
        _cleanup_close_ int fd = -1;
        char **names = NULL;
        size_t n = 0;
        struct dirent *de;
        DIR *dh;
        int r;

        r = env_open_user_dir(d->user, d->homefd, dir, d->flags, &fd);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (r == -ENOENT || r == -ENOTDIR)
                        return 0;
                return strv_pushf(&d->list->errors, &d->list->n_errors, "%s: %s", dir,
                                      r == -ELOOP ? "a symbolic link on the path, not followed"
                                                  : strerror(-r));
        }
        r = env_opendir_dup(fd, &dh);
        if (r < 0)
                return r;
        r = 0;
        while ((de = readdir(dh)) && n < ENV_MAX_ENVS_PER_USER * 4) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                /* Directories; symlinks too: followed with ENV_FOLLOW_SYMLINKS, else
                 * reported as not followed. */
                if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
                        continue;
                r = strv_push(&names, &n, de->d_name);
                if (r < 0)
                        break;
        }
        closedir(dh);
        if (r >= 0 && n > 0)
                qsort(names, n, sizeof(char *), env_cmp_strp);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *p = NULL;
                struct stat st;

                if (asprintf(&p, "%s/%s", dir, names[i]) < 0) {
                        r = -ENOMEM;
                        break;
                }
                /* A symlinked env: report it; a plain dir that is no env: skip. */
                if (!(d->flags & ENV_FOLLOW_SYMLINKS) &&
                    fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                        r = consider(d, p, names[i], false, false);
                else
                        r = consider(d, p, names[i], false, true);
        }
        strv_free_n(names, n);
        return r;
}

static int read_environments_txt(Discovery *d)
{
        _cleanup_free_ char *text = NULL;
        char *save = NULL;
        size_t count = 0;
        int r;

        r = env_read_file_beneath(d->homefd, ".conda/environments.txt", ENV_MAX_SMALL_FILE_BYTES,
                                  &text, NULL);
        if (r == -ENOENT)
                return 0;
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return strv_pushf(&d->list->errors, &d->list->n_errors,
                                      "~/.conda/environments.txt: %s",
                                      r == -ELOOP ? "a symbolic link, not followed" : strerror(-r));
        for (char *line = strtok_r(text, "\r\n", &save); line && count < ENV_MAX_ENVS_PER_USER * 4;
             line = strtok_r(NULL, "\r\n", &save), count++) {
                bool is_base = false;

                while (*line == ' ' || *line == '\t')
                        line++;
                strip_slashes(line);
                if (*line == '\0' || *line == '#')
                        continue;
                if (line[0] != '/') {
                        r = strv_pushf(&d->list->errors, &d->list->n_errors,
                                           "~/.conda/environments.txt: \"%s\" is not an absolute path",
                                           line);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t i = 0; i < env_n_conda_roots; i++) {
                        _cleanup_free_ char *root = NULL;

                        if (asprintf(&root, "%s/%s", d->user->home, env_conda_roots[i]) < 0)
                                return -ENOMEM;
                        if (strcmp(root, line) == 0)
                                is_base = true;
                }
                r = consider(d, line, NULL, is_base, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_default_dir(EnvList *l, const char *home, const char *rel)
{
        char *p;

        if (asprintf(&p, "%s/%s", home, rel) < 0)
                return -ENOMEM;
        if (strv_contains(l->envs_dirs, l->n_envs_dirs, p)) {
                free(p);
                return 0;
        }
        return strv_consume(&l->envs_dirs, &l->n_envs_dirs, p);
}

int env_list_user(const EnvUser *user, const EnvOptions *o, EnvList **ret)
{
        _cleanup_(env_list_freep) EnvList *l = calloc(1, sizeof(EnvList));
        _cleanup_close_ int homefd = -1;
        Discovery d = {};
        char rel[128];
        int r;

        if (!l)
                return -ENOMEM;
        r = env_user_make(user->uid, user->gid, user->name, user->home, &l->user);
        if (r < 0)
                return r;
        l->flags = o ? o->flags : 0;
        r = env_open_home(user, &homefd);
        if (r < 0)
                return r;

        /* Sizes come last, in parallel, once the envs are known. */
        d = (Discovery){ .user = user, .o = o, .homefd = homefd,
                         .flags = (o ? o->flags : 0) & ~(unsigned)ENV_LOAD_SIZE, .list = l };
        r = read_condarcs(user, homefd, o, l, &d.channels, &d.n_channels);
        if (r < 0)
                goto finish;
        for (size_t i = 0; i < env_n_conda_roots; i++) {
                snprintf(rel, sizeof rel, "%s/envs", env_conda_roots[i]);
                r = add_default_dir(l, user->home, rel);
                if (r < 0)
                        goto finish;
        }
        r = add_default_dir(l, user->home, ".conda/envs");
        if (r < 0)
                goto finish;

        for (size_t i = 0; i < env_n_conda_roots; i++) {
                _cleanup_free_ char *root = NULL;

                if (asprintf(&root, "%s/%s", user->home, env_conda_roots[i]) < 0) {
                        r = -ENOMEM;
                        goto finish;
                }
                r = consider(&d, root, "base", true, true);
                if (r < 0)
                        goto finish;
        }
        for (size_t i = 0; i < l->n_envs_dirs; i++) {
                r = scan_envs_dir(&d, l->envs_dirs[i]);
                if (r < 0)
                        goto finish;
        }
        r = read_environments_txt(&d);
        if (r < 0)
                goto finish;
        l->channels = TAKE_PTR(d.channels);
        l->n_channels = d.n_channels;
        if (o && (o->flags & ENV_LOAD_SIZE)) {
                r = env_lists_load_sizes(&l, 1, o);
                if (r < 0)
                        goto finish;
        }
        *ret = TAKE_PTR(l);
        r = 0;
finish:
        strv_free_n(d.channels, d.n_channels);
        strv_free_n(d.seen_paths, d.n_seen_paths);
        return r;
}

int env_find(const EnvUser *user, const char *name_or_path, const EnvOptions *o, EnvInfo **ret)
{
        _cleanup_(env_list_freep) EnvList *l = NULL;
        _cleanup_free_ char *abs = NULL;
        _cleanup_close_ int homefd = -1;
        EnvOptions quick = o ? *o : (EnvOptions){};
        const EnvInfo *match = NULL;
        bool is_path = strchr(name_or_path, '/') != NULL;
        int r;

        quick.flags &= ENV_FOLLOW_SYMLINKS;
        r = env_list_user(user, &quick, &l);
        if (r < 0)
                return r;
        if (is_path) {
                _cleanup_close_ int fd = -1;
                struct stat st;

                if (name_or_path[0] == '/')
                        abs = strdup(name_or_path);
                else {
                        _cleanup_free_ char *cwd = getcwd(NULL, 0);
                        if (!cwd)
                                return negative_errno();
                        if (asprintf(&abs, "%s/%s", cwd, name_or_path) < 0)
                                abs = NULL;
                }
                if (!abs)
                        return -ENOMEM;
                normalise_path(abs);
                r = env_open_home(user, &homefd);
                if (r < 0)
                        return r;
                r = env_open_user_dir(user, homefd, abs, quick.flags, &fd);
                if (r >= 0 && fstat(fd, &st) >= 0) {
                        for (size_t i = 0; i < l->n_envs && !match; i++)
                                if (!l->envs[i]->error && l->envs[i]->dev == st.st_dev &&
                                    l->envs[i]->ino == st.st_ino)
                                        match = l->envs[i];
                }
                if (!match) {
                        bool is_base = false;

                        for (size_t i = 0; i < env_n_conda_roots; i++) {
                                _cleanup_free_ char *root = NULL;
                                if (asprintf(&root, "%s/%s", user->home, env_conda_roots[i]) < 0)
                                        return -ENOMEM;
                                is_base = is_base || strcmp(root, abs) == 0;
                        }
                        return env_info_load(user, homefd, abs, NULL, is_base, l->channels,
                                             l->n_channels, o ? o->flags : 0, ret);
                }
        } else {
                for (size_t i = 0; i < l->n_envs && !match; i++)
                        if (strcmp(l->envs[i]->name, name_or_path) == 0)
                                match = l->envs[i];
                if (!match)
                        return -ENOENT;
                r = env_open_home(user, &homefd);
                if (r < 0)
                        return r;
        }
        return env_info_load(user, homefd, match->path, match->name, match->is_base,
                             match->condarc_channels, match->n_condarc_channels, o ? o->flags : 0,
                             ret);
}

json_t *env_json_string(const char *s)
{
        _cleanup_free_ char *escaped = NULL;

        if (!s)
                return json_null();
        if (utf8_is_valid(s, strlen(s)))
                return json_string(s);
        escaped = utf8_escape_invalid(s);
        return escaped ? json_string(escaped) : NULL;
}

json_t *env_info_to_json(const EnvInfo *e)
{
        json_t *warnings = json_array();
        const char *src = env_last_used_source_to_string(e->last_used_source);

        if (!warnings)
                return NULL;
        for (size_t i = 0; i < e->n_warnings; i++)
                if (json_array_append_new(warnings, env_json_string(e->warnings[i])) < 0) {
                        json_decref(warnings);
                        return NULL;
                }
        /* "o" takes every value, also when json_pack fails (then NULL: ENOMEM). */
        return json_pack("{s:o, s:o, s:o, s:o, s:b, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o}",
                         "name", env_json_string(e->name), "path", env_json_string(e->path),
                         "owner", env_json_string(e->owner_name), "uid",
                         e->owner_uid == (uid_t)-1 ? json_null() : json_integer((json_int_t)e->owner_uid),
                         "is_base", (int)e->is_base, "size_bytes", (json_int_t)e->size_bytes,
                         "python", env_json_string(e->python_version), "torch",
                         env_json_string(e->torch_version), "cuda", env_json_string(e->cuda_version),
                         "created",
                         e->created_usec ? json_integer((json_int_t)(e->created_usec / USEC_PER_SEC))
                                         : json_null(),
                         "last_used",
                         e->last_used_usec
                                 ? json_integer((json_int_t)(e->last_used_usec / USEC_PER_SEC))
                                 : json_null(),
                         "last_used_source", env_json_string(src), "packages",
                         (json_int_t)e->n_packages, "error", env_json_string(e->error), "warnings",
                         warnings);
}

void env_lists_free(EnvList **lists, size_t n)
{
        if (!lists)
                return;
        for (size_t i = 0; i < n; i++)
                env_list_free(lists[i]);
        free(lists);
}

int env_list_users(const EnvUser *users, size_t n_users, const EnvOptions *o, EnvList ***ret)
{
        EnvOptions lo = o ? *o : (EnvOptions){};
        EnvList **lists = calloc(n_users + 1, sizeof(EnvList *));
        int r = 0;

        if (!lists)
                return -ENOMEM;
        lo.flags &= ~(unsigned)ENV_LOAD_SIZE;
        for (size_t i = 0; i < n_users; i++) {
                r = env_list_user(&users[i], &lo, &lists[i]);
                if (r == -ENOMEM)
                        goto fail;
                if (r < 0) {
                        int k;

                        lists[i] = calloc(1, sizeof(EnvList));
                        if (!lists[i] ||
                            env_user_make(users[i].uid, users[i].gid, users[i].name, users[i].home,
                                          &lists[i]->user) < 0) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        k = r == -EPERM ? strv_pushf(&lists[i]->errors, &lists[i]->n_errors,
                                                         "home %s: not owned by %s, not read",
                                                         users[i].home, users[i].name)
                                        : strv_pushf(&lists[i]->errors, &lists[i]->n_errors,
                                                         "home %s: %s", users[i].home, strerror(-r));
                        if (k < 0) {
                                r = k;
                                goto fail;
                        }
                }
        }
        if (o && (o->flags & ENV_LOAD_SIZE)) {
                r = env_lists_load_sizes(lists, n_users, o);
                if (r < 0)
                        goto fail;
        }
        *ret = lists;
        return 0;
fail:
        env_lists_free(lists, n_users);
        return r;
}
