/* Arrays of strings with a separate count; see strv.h. */
#include "basic/strv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strv_free_n(char **v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

int strv_consume(char ***v, size_t *n, char *s)
{
        char **nv;

        if (!s)
                return -ENOMEM;
        nv = realloc(*v, sizeof(char *) * (*n + 2));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[(*n)++] = s;
        nv[*n] = NULL;
        *v = nv;
        return 0;
}

int strv_push(char ***v, size_t *n, const char *s)
{
        return strv_consume(v, n, strdup(s));
}

int strv_pushv(char ***v, size_t *n, const char *fmt, va_list ap)
{
        char *s;

        if (vasprintf(&s, fmt, ap) < 0)
                return -ENOMEM;
        return strv_consume(v, n, s);
}

int strv_pushf(char ***v, size_t *n, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = strv_pushv(v, n, fmt, ap);
        va_end(ap);
        return r;
}

bool strv_contains(char *const *v, size_t n, const char *s)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

int strv_copy(char *const *v, size_t n, char ***ret, size_t *ret_n)
{
        char **c = NULL;
        size_t cn = 0;

        for (size_t i = 0; i < n; i++) {
                int r = strv_push(&c, &cn, v[i]);
                if (r < 0) {
                        strv_free_n(c, cn);
                        return r;
                }
        }
        *ret = c;
        *ret_n = cn;
        return 0;
}
