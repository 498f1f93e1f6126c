/* The driver's device-node tables; see devnodes.h. */
#include "isolate/devnodes.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "basic/macro.h"

static int read_small_file(const char *path, char **ret)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return negative_errno();
        return read_full_fd(fd, ISOLATE_TABLE_FILE_MAX, ret, NULL);
}

static bool parse_u32(const char **p, uint32_t *ret)
{
        char *end;
        unsigned long v;

        if (**p < '0' || **p > '9')
                return false;
        errno = 0;
        v = strtoul(*p, &end, 10);
        if (errno || v > UINT32_MAX - 1)
                return false;
        *ret = (uint32_t)v;
        *p = end;
        return true;
}

static bool expect(const char **p, const char *word)
{
        size_t n = strlen(word);

        if (strncmp(*p, word, n) != 0)
                return false;
        *p += n;
        return true;
}

/* "gpu%u/gi%u/access %u" or "gpu%u/gi%u/ci%u/access %u", nothing else on the line. */
static bool parse_mig_line(const char *p, PolicyFenceMig *ret)
{
        PolicyFenceMig m = {.ci = POLICY_FENCE_GI_NODE};

        if (!expect(&p, "gpu") || !parse_u32(&p, &m.gpu) || !expect(&p, "/gi") ||
            !parse_u32(&p, &m.gi) || !expect(&p, "/"))
                return false;
        if (expect(&p, "ci")) {
                if (!parse_u32(&p, &m.ci) || !expect(&p, "/"))
                        return false;
        }
        if (!expect(&p, "access") || (*p != ' ' && *p != '\t'))
                return false;
        p += strspn(p, " \t");
        if (!parse_u32(&p, &m.minor))
                return false;
        p += strspn(p, " \t");
        if (*p != '\0')
                return false;
        *ret = m;
        return true;
}

int isolate_mig_minors_parse(const char *text, PolicyFenceMig **ret, size_t *ret_n,
                             unsigned *ret_line)
{
        _cleanup_free_ PolicyFenceMig *out = NULL;
        size_t n = 0, cap = 0;
        unsigned line = 0;

        for (const char *p = text; *p;) {
                const char *eol = strchr(p, '\n');
                size_t len = eol ? (size_t)(eol - p) : strlen(p);
                char buf[128];

                line++;
                if (len >= sizeof buf || strncmp(p, "gpu", 3) != 0) {
                        /* Long lines are never ours; other names are admin caps. */
                        if (len >= sizeof buf && strncmp(p, "gpu", 3) == 0)
                                goto bad;
                        p += len + (eol ? 1 : 0);
                        continue;
                }
                memcpy(buf, p, len);
                buf[len] = '\0';
                if (len && buf[len - 1] == '\r')
                        buf[len - 1] = '\0';
                if (n == cap) {
                        PolicyFenceMig *grown;

                        if (cap >= ISOLATE_MIG_MINORS_MAX)
                                return -E2BIG;
                        cap = cap ? cap * 2 : 64;
                        grown = realloc(out, cap * sizeof *out);
                        if (!grown)
                                return -ENOMEM;
                        out = grown;
                }
                if (!parse_mig_line(buf, &out[n]))
                        goto bad;
                n++;
                p += len + (eol ? 1 : 0);
        }
        *ret = TAKE_PTR(out);
        *ret_n = n;
        return 0;
bad:
        if (ret_line)
                *ret_line = line;
        return -EINVAL;
}

int isolate_mig_minors_load(const char *path, PolicyFenceMig **ret, size_t *ret_n,
                            unsigned *ret_line)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = read_small_file(path, &text);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return r;
        return isolate_mig_minors_parse(text, ret, ret_n, ret_line);
}

int isolate_char_major(const char *path, const char *name, uint32_t *ret)
{
        _cleanup_free_ char *text = NULL;
        bool in_char = false;
        int r;

        r = read_small_file(path, &text);
        if (r < 0)
                return r;
        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                const char *p = line + strspn(line, " \t");
                uint32_t major;

                if (strncmp(line, "Character devices:", 18) == 0) {
                        in_char = true;
                        continue;
                }
                if (strncmp(line, "Block devices:", 14) == 0) {
                        in_char = false;
                        continue;
                }
                if (!in_char || !parse_u32(&p, &major) || (*p != ' ' && *p != '\t'))
                        continue;
                p += strspn(p, " \t");
                if (strcmp(p, name) == 0) {
                        *ret = major;
                        return 0;
                }
        }
        return -ENOENT;
}
