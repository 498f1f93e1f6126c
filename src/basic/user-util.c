/* NSS user lookups; see user-util.h. */
#include "basic/user-util.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>

#include "basic/macro.h"

int user_name_from_uid(uid_t uid, char *buf, size_t len)
{
        struct passwd pw, *result = NULL;
        char scratch[4096];
        int r;

        r = getpwuid_r(uid, &pw, scratch, sizeof scratch, &result);
        if (r != 0)
                return -r;
        if (!result)
                return -ENOENT;
        if (strlen(pw.pw_name) >= len)
                return -ERANGE;
        strcpy(buf, pw.pw_name);
        return 0;
}

const char *user_memo_name(UserMemo *memo, uid_t uid)
{
        for (size_t i = 0; i < memo->n; i++)
                if (memo->entries[i].uid == uid)
                        return memo->entries[i].found ? memo->entries[i].name : NULL;

        if (memo->n < USER_MEMO_SIZE) {
                __typeof__(memo->entries[0]) *e = &memo->entries[memo->n++];

                e->uid = uid;
                e->found = user_name_from_uid(uid, e->name, sizeof e->name) >= 0;
                return e->found ? e->name : NULL;
        }
        return user_name_from_uid(uid, memo->overflow, sizeof memo->overflow) >= 0 ? memo->overflow
                                                                           : NULL;
}
