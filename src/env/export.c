/* environment.yml output, byte-for-byte what `conda env export` writes for the
 * same prefix (conda/env/env.py from_environment + its YAML dump): key order
 * name, channels, dependencies, prefix; 2-space mapping indent, list items
 * "  - ", pip items "      - ", every value a plain scalar where the YAML
 * emitter would write one and a double-quoted one otherwise (so no name from
 * a user's files can add lines or keys). Deliberate differences are listed in
 * env.h above env_export. Also conda's canonical channel names. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basic/strv.h"
#include "basic/utf8.h"
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

/* conda's from_environment: start from the .condarc channels ("defaults" when
 * it names none); then, for each record in name order, a canonical channel not
 * yet listed goes to the front (channels.insert(0, ...)), so one .condarc names
 * keeps its place. from_history: only the .condarc channels. */
static int export_channels(const EnvInfo *env, const EnvPackage *conda, size_t n, bool from_history,
                           char ***ret, size_t *ret_n)
{
        char **v = NULL;
        size_t nv = 0;
        int r = 0;

        for (size_t i = 0; r >= 0 && i < env->n_condarc_channels; i++)
                if (!strv_contains(v, nv, env->condarc_channels[i]))
                        r = strv_push(&v, &nv, env->condarc_channels[i]);
        if (r >= 0 && nv == 0)
                r = strv_push(&v, &nv, "defaults");
        for (size_t i = 0; !from_history && r >= 0 && i < n; i++) {
                char *front;

                if (!conda[i].channel || strv_contains(v, nv, conda[i].channel))
                        continue;
                r = strv_push(&v, &nv, conda[i].channel);
                if (r < 0)
                        break;
                front = v[nv - 1];
                memmove(v + 1, v, sizeof(char *) * (nv - 1));
                v[0] = front;
        }
        if (r < 0) {
                strv_free_n(v, nv);
                return r;
        }
        *ret = v;
        *ret_n = nv;
        return 0;
}

/* ---- YAML scalars ---- */

/* The code point of the well-formed UTF-8 sequence at s (NUL-terminated) and
 * its length in *ret_len; -1 (and *ret_len untouched) when the bytes there
 * are not one. */
static int32_t yaml_decode(const char *s, size_t *ret_len)
{
        uint32_t cp;
        size_t n = utf8_decode(s, SIZE_MAX, &cp);

        if (cp == UTF8_INVALID)
                return -1;
        *ret_len = n;
        return (int32_t)cp;
}

/* Printable code points a YAML emitter writes as they are (PyYAML's and
 * ruamel's analyze_scalar with allow_unicode): ASCII 0x20-0x7E, and from U+00A0
 * on all but the line/paragraph separators, the BOM and U+FFFE/U+FFFF. */
static bool yaml_printable(int32_t cp)
{
        if (cp < 0x80)
                return cp >= 0x20 && cp <= 0x7E;
        return cp >= 0xA0 && cp != 0x2028 && cp != 0x2029 && cp != 0xFEFF && cp != 0xFFFE &&
               cp != 0xFFFF;
}

/* Would a YAML 1.1 or 1.2 loader read the plain scalar s as something other
 * than a string (null, boolean, number, timestamp, merge key, value key)?
 * Errs towards yes: a false yes only costs quotes. */
static bool yaml_plain_not_string(const char *s)
{
        static const char *const words[] = {
                "~",    "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
                "yes",  "Yes",  "YES",  "no",   "No",   "NO",   "on",   "On",    "ON",    "off",
                "Off",  "OFF",  "y",    "Y",    "n",    "N",    "=",    "<<",    ".inf",  ".Inf",
                ".INF", ".nan", ".NaN", ".NAN",
        };
        const char *p = s, *allowed = "0123456789_.:+-eEtTzZ ";

        if (*p == '+' || *p == '-')
                p++;
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcmp(s, words[i]) == 0 || (p != s && strcmp(p, words[i]) == 0))
                        return true;
        if (!((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9')))
                return false;
        if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
                p += 2, allowed = "0123456789abcdefABCDEF_";
        else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
                p += 2, allowed = "01234567_";
        else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
                p += 2, allowed = "01_";
        return strspn(p, allowed) == strlen(p);
}

/* Can s be written as a plain scalar in block context (a mapping value or a
 * sequence item) and read back as the same string? The rules of PyYAML's /
 * ruamel's emitter, so that what they write plain (every ordinary name,
 * version, spec, channel and path) is written plain here too. */
static bool yaml_plain_ok(const char *s)
{
        size_t len = strlen(s);

        if (len == 0 || s[0] == ' ' || s[len - 1] == ' ')
                return false;
        if (strncmp(s, "---", 3) == 0 || strncmp(s, "...", 3) == 0)
                return false;
        if (strchr("#,[]{}&*!|>'\"%@`", s[0]))
                return false;
        if (strchr("?:-", s[0]) && (s[1] == '\0' || s[1] == ' '))
                return false;
        for (size_t i = 0; i < len;) {
                size_t n = 1;
                int32_t cp = yaml_decode(s + i, &n);

                if (cp < 0 || !yaml_printable(cp))
                        return false;
                if (cp == ':' && (s[i + 1] == '\0' || s[i + 1] == ' '))
                        return false;
                if (cp == '#' && i > 0 && s[i - 1] == ' ')
                        return false;
                i += n;
        }
        return !yaml_plain_not_string(s);
}

/* Write s as one YAML scalar: plain when yaml_plain_ok, else double-quoted
 * with \" \\ \n \t \r, \xNN for other control characters and for each byte
 * that is not valid UTF-8 (YAML text must be UTF-8; such a byte is read back
 * as U+00NN), \L \P \uFEFF for the separators and BOM. A name can never end
 * the scalar or start a line of its own. */
static void yaml_write_scalar(FILE *f, const char *s)
{
        if (yaml_plain_ok(s)) {
                fputs(s, f);
                return;
        }
        fputc('"', f);
        for (size_t i = 0; s[i];) {
                size_t n = 1;
                int32_t cp = yaml_decode(s + i, &n);

                if (cp < 0)
                        fprintf(f, "\\x%02X", (unsigned char)s[i]);
                else if (cp == '"' || cp == '\\')
                        fprintf(f, "\\%c", (char)cp);
                else if (cp == '\n')
                        fputs("\\n", f);
                else if (cp == '\t')
                        fputs("\\t", f);
                else if (cp == '\r')
                        fputs("\\r", f);
                else if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
                        fprintf(f, "\\x%02X", (unsigned)cp);
                else if (cp == 0x2028)
                        fputs("\\L", f);
                else if (cp == 0x2029)
                        fputs("\\P", f);
                else if (!yaml_printable(cp))
                        fprintf(f, "\\u%04X", (unsigned)cp);
                else
                        fwrite(s + i, 1, n, f);
                i += n;
        }
        fputc('"', f);
}

/* One line "<lead><the n parts joined by sep, as a YAML scalar>\n": a
 * dependency is one scalar, "name=version=build". 0 or -ENOMEM. */
static int yaml_line(FILE *f, const char *lead, const char *sep, const char *const *parts, size_t n)
{
        _cleanup_free_ char *s = NULL;
        size_t len = 1, o = 0;

        for (size_t i = 0; i < n; i++)
                len += strlen(parts[i]) + strlen(sep);
        s = malloc(len);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                size_t k = strlen(parts[i]);

                if (i > 0) {
                        memcpy(s + o, sep, strlen(sep));
                        o += strlen(sep);
                }
                memcpy(s + o, parts[i], k);
                o += k;
        }
        s[o] = '\0';
        fputs(lead, f);
        yaml_write_scalar(f, s);
        fputc('\n', f);
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
        r = yaml_line(f, "name: ", "", (const char *const[]){ env->name }, 1);
        if (r >= 0)
                fputs("channels:\n", f);
        for (size_t i = 0; r >= 0 && i < n_channels; i++)
                r = yaml_line(f, "  - ", "", (const char *const[]){ channels[i] }, 1);
        strv_free_n(channels, n_channels);
        if (r < 0)
                return r;
        /* conda's Environment.to_dict leaves out an empty dependencies list. */
        if ((mode == ENV_EXPORT_FROM_HISTORY ? env->n_history_specs : n_conda + n_pip) > 0)
                fputs("dependencies:\n", f);
        if (mode == ENV_EXPORT_FROM_HISTORY) {
                for (size_t i = 0; r >= 0 && i < env->n_history_specs; i++)
                        r = yaml_line(f, "  - ", "", (const char *const[]){ env->history_specs[i] },
                                      1);
        } else {
                for (size_t i = 0; r >= 0 && i < n_conda; i++)
                        r = yaml_line(f, "  - ", "=",
                                      (const char *const[]){ conda[i].name, conda[i].version,
                                                             conda[i].build },
                                      mode == ENV_EXPORT_BUILDS ? 3 : 2);
                if (r >= 0 && n_pip > 0)
                        fputs("  - pip:\n", f);
                for (size_t i = 0; r >= 0 && i < n_pip; i++)
                        r = yaml_line(f, "      - ", "==",
                                      (const char *const[]){ pip[i].name, pip[i].version }, 2);
        }
        if (r >= 0)
                r = yaml_line(f, "prefix: ", "", (const char *const[]){ env->path }, 1);
        if (r < 0)
                return r;
        if (fflush(f) != 0 || ferror(f))
                return -EIO;
        return 0;
}
