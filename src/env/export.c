/* environment.yml output, byte-for-byte what `conda env export` writes for the
 * same prefix (conda/env/env.py from_environment + its YAML dump): key order
 * name, channels, dependencies, prefix; 2-space mapping indent, list items
 * "  - ", pip items "      - ". Deliberate differences are listed in env.h
 * above env_export. Also conda's canonical channel names. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "env/env-internal.h"

static bool is_subdir(const char *s, size_t len)
{
        static const char *const prefixes[] = { "linux-", "osx-", "win-", "zos-", "emscripten-", "wasi-" };

        if (len == 6 && strncmp(s, "noarch", 6) == 0)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                size_t pl = strlen(prefixes[i]);
                if (len > pl && strncmp(s, prefixes[i], pl) == 0)
                        return true;
        }
        return false;
}

/* Cut a trailing "/<subdir>" and trailing slashes off s (in place). */
static void strip_subdir(char *s)
{
        size_t n = strlen(s);
        char *slash;

        while (n > 0 && s[n - 1] == '/')
                s[--n] = '\0';
        slash = strrchr(s, '/');
        if (slash && is_subdir(slash + 1, strlen(slash + 1))) {
                *slash = '\0';
                n = strlen(s);
                while (n > 0 && s[n - 1] == '/')
                        s[--n] = '\0';
        }
}

char *env_channel_canonical(const char *channel)
{
        static const char *const default_paths[] = { "pkgs/main", "pkgs/r", "pkgs/msys2",
                                                     "pkgs/free", "pkgs/pro" };
        _cleanup_free_ char *c = strdup(channel);
        const char *scheme, *host, *path;
        size_t host_len;

        if (!c)
                return NULL;
        strip_subdir(c);
        scheme = strstr(c, "://");
        if (!scheme) {
                for (size_t i = 0; i < ELEMENTSOF(default_paths); i++)
                        if (strcmp(c, default_paths[i]) == 0)
                                return strdup("defaults");
                return TAKE_PTR(c);
        }
        host = scheme + 3;
        path = strchr(host, '/');
        host_len = path ? (size_t)(path - host) : strlen(host);
        path = path ? path + 1 : "";
        if (host_len == strlen("conda.anaconda.org") &&
            strncmp(host, "conda.anaconda.org", host_len) == 0 && *path) {
                /* Token URLs: https://conda.anaconda.org/t/<token>/<channel> */
                if (strncmp(path, "t/", 2) == 0) {
                        const char *after = strchr(path + 2, '/');
                        if (after && after[1])
                                path = after + 1;
                }
                return strdup(path);
        }
        if (host_len == strlen("repo.anaconda.com") &&
            strncmp(host, "repo.anaconda.com", host_len) == 0)
                for (size_t i = 0; i < ELEMENTSOF(default_paths); i++)
                        if (strcmp(path, default_paths[i]) == 0)
                                return strdup("defaults");
        return TAKE_PTR(c);
}

static int cmp_name(const void *a, const void *b)
{
        return strcmp(((const EnvPackage *)a)->name, ((const EnvPackage *)b)->name);
}

/* Channels of the records in name order (first appearance), then the .condarc
 * channels, "defaults" when .condarc has none. from_history: only the latter. */
static int export_channels(const EnvInfo *env, const EnvPackage *conda, size_t n, bool from_history,
                           char ***ret, size_t *ret_n)
{
        char **v = NULL;
        size_t nv = 0;
        int r = 0;

        for (size_t i = 0; !from_history && r >= 0 && i < n; i++)
                if (conda[i].channel && !env_strv_contains(v, nv, conda[i].channel))
                        r = env_strv_push(&v, &nv, conda[i].channel);
        for (size_t i = 0; r >= 0 && i < env->n_condarc_channels; i++)
                if (!env_strv_contains(v, nv, env->condarc_channels[i]))
                        r = env_strv_push(&v, &nv, env->condarc_channels[i]);
        if (r >= 0 && env->n_condarc_channels == 0 && !env_strv_contains(v, nv, "defaults"))
                r = env_strv_push(&v, &nv, "defaults");
        if (r < 0) {
                env_strv_free(v, nv);
                return r;
        }
        *ret = v;
        *ret_n = nv;
        return 0;
}

int env_export(const EnvInfo *env, EnvExportMode mode, FILE *f)
{
        _cleanup_free_ EnvPackage *conda = NULL, *pip = NULL;
        char **channels = NULL;
        size_t n_conda = 0, n_pip = 0, n_channels = 0;
        int r;

        if (env->error)
                return -EINVAL;
        /* packages[] is documented as sorted, but sort a shallow copy anyway so
         * the output never depends on how the env was loaded. */
        conda = malloc(sizeof(EnvPackage) * (env->n_packages + 1));
        pip = malloc(sizeof(EnvPackage) * (env->n_packages + 1));
        if (!conda || !pip)
                return -ENOMEM;
        for (size_t i = 0; env->packages && i < env->n_packages; i++) {
                if (env->packages[i].pip)
                        pip[n_pip++] = env->packages[i];
                else
                        conda[n_conda++] = env->packages[i];
        }
        qsort(conda, n_conda, sizeof(EnvPackage), cmp_name);
        qsort(pip, n_pip, sizeof(EnvPackage), cmp_name);

        r = export_channels(env, conda, n_conda, mode == ENV_EXPORT_FROM_HISTORY, &channels,
                            &n_channels);
        if (r < 0)
                return r;
        fprintf(f, "name: %s\n", env->name);
        fputs("channels:\n", f);
        for (size_t i = 0; i < n_channels; i++)
                fprintf(f, "  - %s\n", channels[i]);
        env_strv_free(channels, n_channels);
        /* conda's Environment.to_dict leaves out an empty dependencies list. */
        if ((mode == ENV_EXPORT_FROM_HISTORY ? env->n_history_specs : n_conda + n_pip) > 0)
                fputs("dependencies:\n", f);
        if (mode == ENV_EXPORT_FROM_HISTORY) {
                for (size_t i = 0; i < env->n_history_specs; i++)
                        fprintf(f, "  - %s\n", env->history_specs[i]);
        } else {
                for (size_t i = 0; i < n_conda; i++) {
                        if (mode == ENV_EXPORT_BUILDS)
                                fprintf(f, "  - %s=%s=%s\n", conda[i].name, conda[i].version,
                                        conda[i].build);
                        else
                                fprintf(f, "  - %s=%s\n", conda[i].name, conda[i].version);
                }
                if (n_pip > 0) {
                        fputs("  - pip:\n", f);
                        for (size_t i = 0; i < n_pip; i++)
                                fprintf(f, "      - %s==%s\n", pip[i].name, pip[i].version);
                }
        }
        fprintf(f, "prefix: %s\n", env->path);
        if (fflush(f) != 0 || ferror(f))
                return -EIO;
        return 0;
}
