/* The welcome text `user add` prints: a template with {{placeholders}}
 * (the built-in data/onboarding/welcome.txt, or the admin's
 * onboarding.welcome file), expanded here. See onboard.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/fileio.h"
#include "basic/macro.h"
#include "basic/memstream.h"
#include "onboard/onboard.h"

/* The value of placeholder name[0..len), or -EINVAL for an unknown one. */
static int lookup(const OnboardWelcomeVars *v, const char *name, size_t len, const char **ret)
{
        const struct {
                const char *name;
                const char *value;
        } vars[] = {
                {"user", v->user},     {"host", v->host}, {"home", v->home},
                {"groups", v->groups}, {"envs", v->envs},
        };

        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                if (strlen(vars[i].name) == len && memcmp(vars[i].name, name, len) == 0) {
                        *ret = vars[i].value ? vars[i].value : "";
                        return 0;
                }
        return -EINVAL;
}

static unsigned line_of(const char *start, const char *at)
{
        unsigned line = 1;

        for (const char *p = start; p < at; p++)
                if (*p == '\n')
                        line++;
        return line;
}

int onboard_welcome_render(const char *template, const OnboardWelcomeVars *v, char **ret,
                           unsigned *ret_line)
{
        const char *t = template;
        MemStream m;
        int r = 0;

        assert(template && v && ret);
        r = memstream_open(&m);
        if (r < 0)
                return r;
        while (*t) {
                const char *open = strstr(t, "{{"), *close, *name, *end, *value;

                if (!open) {
                        fputs(t, m.f);
                        break;
                }
                fwrite(t, 1, (size_t)(open - t), m.f);
                close = strstr(open + 2, "}}");
                /* A placeholder is on one line. */
                if (!close || memchr(open + 2, '\n', (size_t)(close - open - 2))) {
                        r = -EINVAL;
                        break;
                }
                name = open + 2;
                end = close;
                while (name < end && *name == ' ')
                        name++;
                while (end > name && end[-1] == ' ')
                        end--;
                r = lookup(v, name, (size_t)(end - name), &value);
                if (r < 0)
                        break;
                fputs(value, m.f);
                t = close + 2;
        }
        if (r == -EINVAL && ret_line)
                *ret_line = line_of(template, strstr(t, "{{") ? strstr(t, "{{") : t);
        return memstream_finish(&m, r, ret, NULL);
}

int onboard_welcome_load(const char *path, char **ret)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        assert(path && ret);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        r = read_full_fd(fd, ONBOARD_WELCOME_MAX, &text, &len);
        if (r < 0)
                return r;
        if (memchr(text, '\0', len))
                return -EINVAL;
        *ret = TAKE_PTR(text);
        return 0;
}
