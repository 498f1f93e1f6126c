/* Checks shared by the CLI's view tests; see text-check.h. */
#include "text-check.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <cmocka.h>

#include "basic/macro.h"

json_t *cli_test_load(const char *text)
{
        json_error_t error;
        json_t *j = json_loads(text, 0, &error);

        if (!j)
                fail_msg("fixture does not parse: %s (line %d)", error.text, error.line);
        return j;
}

size_t cli_test_columns(const char *s, size_t len)
{
        mbstate_t st = {};
        size_t cols = 0;

        for (size_t i = 0; i < len;) {
                wchar_t wc;
                size_t n;
                int w;

                if (s[i] == '\033') {
                        assert_true(i + 1 < len && s[i + 1] == '[');
                        i += 2;
                        while (i < len && s[i] != 'm')
                                i++;
                        i++;
                        continue;
                }
                n = mbrtowc(&wc, s + i, len - i, &st);
                assert_true(n != (size_t)-1 && n != (size_t)-2 && n != 0);
                w = wcwidth(wc);
                assert_true(w >= 0);
                cols += (size_t)w;
                i += n;
        }
        return cols;
}

size_t cli_test_check_lines(const char *out, size_t max)
{
        size_t widest = 0;

        for (const char *p = out; *p;) {
                const char *nl = strchr(p, '\n');
                size_t cols;

                assert_non_null(nl); /* every line is terminated */
                cols = cli_test_columns(p, (size_t)(nl - p));
                if (cols > max)
                        fail_msg("line of %zu columns (max %zu): %.*s", cols, max, (int)(nl - p),
                                 p);
                widest = MAX(widest, cols);
                p = nl + 1;
        }
        return widest;
}

char *cli_test_line_with(const char *out, const char *needle)
{
        const char *hit = strstr(out, needle), *start, *end;

        if (!hit)
                fail_msg("no line contains \"%s\" in:\n%s", needle, out);
        for (start = hit; start > out && start[-1] != '\n'; start--)
                ;
        end = strchr(hit, '\n');
        return strndup(start, (size_t)(end - start));
}
