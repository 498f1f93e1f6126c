/* NSS user lookups; see user-util.h. */
#include "basic/user-util.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

/* getpwuid_r with a buffer that grows on ERANGE (up to 1 MiB): glibc's files
 * module answers ERANGE for every uid after one long line in /etc/passwd (a
 * GECOS field of a few KiB), not only for the long entry itself. */
static int passwd_by_uid(uid_t uid, struct passwd *pw, char **ret_buf)
{
        for (size_t size = 4096; size <= 1024 * 1024; size *= 2) {
                struct passwd *result = NULL;
                char *buf = malloc(size);
                int r;

                if (!buf)
                        return -ENOMEM;
                r = getpwuid_r(uid, pw, buf, size, &result);
                if (r == ERANGE) {
                        free(buf);
                        continue;
                }
                if (r != 0 || !result) {
                        free(buf);
                        return r != 0 ? -r : -ENOENT;
                }
                *ret_buf = buf;
                return 0;
        }
        return -ERANGE;
}

int user_name_gid_from_uid(uid_t uid, char *buf, size_t len, gid_t *ret_gid)
{
        _cleanup_free_ char *scratch = NULL;
        struct passwd pw;
        int r;

        r = passwd_by_uid(uid, &pw, &scratch);
        if (r < 0)
                return r;
        if (strlen(pw.pw_name) >= len)
                return -ERANGE;
        strcpy(buf, pw.pw_name);
        if (ret_gid)
                *ret_gid = pw.pw_gid;
        return 0;
}

int user_name_from_uid(uid_t uid, char *buf, size_t len)
{
        return user_name_gid_from_uid(uid, buf, len, NULL);
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

/* getgrgid_r / getgrnam_r with a buffer that grows on ERANGE, up to 1 MiB. */
static int group_lookup(const char *name, gid_t gid, struct group *gr, char **ret_buf)
{
        for (size_t size = 4096; size <= 1024 * 1024; size *= 2) {
                struct group *result = NULL;
                char *buf = malloc(size);
                int r;

                if (!buf)
                        return -ENOMEM;
                r = name ? getgrnam_r(name, gr, buf, size, &result)
                         : getgrgid_r(gid, gr, buf, size, &result);
                if (r == ERANGE) {
                        free(buf);
                        continue;
                }
                if (r != 0 || !result) {
                        free(buf);
                        return r != 0 ? -r : -ENOENT;
                }
                *ret_buf = buf;
                return 0;
        }
        return -ERANGE;
}

int group_name_from_gid(gid_t gid, char *buf, size_t len)
{
        _cleanup_free_ char *scratch = NULL;
        struct group gr;
        int r;

        r = group_lookup(NULL, gid, &gr, &scratch);
        if (r < 0)
                return r;
        if (strlen(gr.gr_name) >= len)
                return -ERANGE;
        strcpy(buf, gr.gr_name);
        return 0;
}

int group_gid_from_name(const char *name, gid_t *ret)
{
        _cleanup_free_ char *scratch = NULL;
        struct group gr;
        int r;

        r = group_lookup(name, 0, &gr, &scratch);
        if (r < 0)
                return r;
        *ret = gr.gr_gid;
        return 0;
}

int user_uid_from_name(const char *name, uid_t *ret)
{
        /* A passwd entry can be long (a GECOS field of a few KiB, an LDAP
         * home path): grow the buffer on ERANGE instead of failing. */
        for (size_t size = 4096; size <= 1024 * 1024; size *= 2) {
                _cleanup_free_ char *buf = malloc(size);
                struct passwd pw, *result = NULL;
                int r;

                if (!buf)
                        return -ENOMEM;
                r = getpwnam_r(name, &pw, buf, size, &result);
                if (r == ERANGE)
                        continue;
                if (r != 0)
                        return -r;
                if (!result)
                        return -ENOENT;
                *ret = pw.pw_uid;
                return 0;
        }
        return -ERANGE;
}
