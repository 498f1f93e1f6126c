/* Arrays of strings with a separate count; see strv.h. */
#include "basic/strv.h"

#include <stdlib.h>

void strv_free_n(char **v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}
