/* NSS user lookups; see user-util.h. */
#include "basic/user-util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

typedef enum NssKey { BY_UID, BY_USER_NAME, BY_GID, BY_GROUP_NAME } NssKey;

/* One call of the reentrant function for `key`; *found when it answered an
 * entry. */
static int nss_call(NssKey key, const char *name, unsigned id, void *ent, char *buf,
                    size_t size, bool *found)
{
        struct passwd *pw = NULL;
        struct group *gr = NULL;
        int r = EINVAL;

        switch (key) {
        case BY_UID:
                r = getpwuid_r((uid_t)id, ent, buf, size, &pw);
                break;
        case BY_USER_NAME:
                r = getpwnam_r(name, ent, buf, size, &pw);
                break;
        case BY_GID:
                r = getgrgid_r((gid_t)id, ent, buf, size, &gr);
                break;
        case BY_GROUP_NAME:
                r = getgrnam_r(name, ent, buf, size, &gr);
                break;
        }
        *found = pw || gr;
        return r;
}

static int nss_lookup(NssKey key, const char *name, unsigned id, void *ent, char **ret_buf)
{
        for (size_t size = 4096; size <= 1024 * 1024; size *= 2) {
                char *buf = malloc(size);
                bool found;
                int r;

                if (!buf)
                        return -ENOMEM;
                r = nss_call(key, name, id, ent, buf, size, &found);
                if (r == 0 && found) {
                        *ret_buf = buf;
                        return 0;
                }
                free(buf);
                if (r != ERANGE)
                        return r != 0 ? -r : -ENOENT;
        }
        return -ERANGE;
}

int nss_passwd_by_uid(uid_t uid, struct passwd *ret, char **ret_buf)
{
        return nss_lookup(BY_UID, NULL, (unsigned)uid, ret, ret_buf);
}

int nss_passwd_by_name(const char *name, struct passwd *ret, char **ret_buf)
{
        return nss_lookup(BY_USER_NAME, name, 0, ret, ret_buf);
}

int nss_group_by_gid(gid_t gid, struct group *ret, char **ret_buf)
{
        return nss_lookup(BY_GID, NULL, (unsigned)gid, ret, ret_buf);
}

int nss_group_by_name(const char *name, struct group *ret, char **ret_buf)
{
        return nss_lookup(BY_GROUP_NAME, name, 0, ret, ret_buf);
}

int user_name_gid_from_uid(uid_t uid, char *buf, size_t len, gid_t *ret_gid)
{
        _cleanup_free_ char *scratch = NULL;
        struct passwd pw;
        int r;

        r = nss_passwd_by_uid(uid, &pw, &scratch);
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

int group_name_from_gid(gid_t gid, char *buf, size_t len)
{
        _cleanup_free_ char *scratch = NULL;
        struct group gr;
        int r;

        r = nss_group_by_gid(gid, &gr, &scratch);
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

        r = nss_group_by_name(name, &gr, &scratch);
        if (r < 0)
                return r;
        *ret = gr.gr_gid;
        return 0;
}

int user_uid_from_name(const char *name, uid_t *ret)
{
        _cleanup_free_ char *scratch = NULL;
        struct passwd pw;
        int r;

        r = nss_passwd_by_name(name, &pw, &scratch);
        if (r < 0)
                return r;
        *ret = pw.pw_uid;
        return 0;
}
