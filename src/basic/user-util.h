/* User and group lookups through NSS (getpwuid_r and friends). */
#pragma once

#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The one NSS lookup loop: getpwuid_r / getpwnam_r / getgrgid_r /
 * getgrnam_r with a buffer that grows on ERANGE, up to 1 MiB. glibc's files
 * module answers ERANGE for every entry after one long line in /etc/passwd
 * (a GECOS field of a few KiB), and a group of a few hundred members does
 * not fit a small buffer: neither may turn into "no such user/group".
 * On success *ret_buf holds the strings the entry points into (the caller
 * frees it). Return 0, -ENOENT when there is no such entry, -ERANGE past
 * 1 MiB, -ENOMEM, other -errno from NSS. */
int nss_passwd_by_uid(uid_t uid, struct passwd *ret, char **ret_buf);
int nss_passwd_by_name(const char *name, struct passwd *ret, char **ret_buf);
int nss_group_by_gid(gid_t gid, struct group *ret, char **ret_buf);
int nss_group_by_name(const char *name, struct group *ret, char **ret_buf);

/* Copy the login name of `uid` into buf. Returns 0, -ENOENT when the uid has
 * no passwd entry, -ERANGE when buf is too small, other -errno from NSS. */
int user_name_from_uid(uid_t uid, char *buf, size_t len);
/* The same, and the user's primary group in *ret_gid (may be NULL). */
int user_name_gid_from_uid(uid_t uid, char *buf, size_t len, gid_t *ret_gid);

/* Group lookups that do not give up on large groups: the member list of a
 * group of a few hundred students does not fit a small buffer, and a lookup
 * that fails with ERANGE must not silently drop the group's policy.
 * Return 0, -ENOENT when there is no such group, other -errno. */
int group_name_from_gid(gid_t gid, char *buf, size_t len);
int group_gid_from_name(const char *name, gid_t *ret);

/* The uid of login `name`. Returns 0, -ENOENT when there is no such user, other -errno. */
int user_uid_from_name(const char *name, uid_t *ret);

/* Per-request memo of uid → name lookups: status replies name the owner of
 * every GPU process, and a few users own most of them. Fixed size; lookups
 * beyond it still work, they are just not memoised. */
#define USER_MEMO_SIZE 64
typedef struct UserMemo {
        size_t n;
        struct {
                uid_t uid;
                bool found;
                char name[64];
        } entries[USER_MEMO_SIZE];
        char overflow[64]; /* the answer for a uid that did not fit */
} UserMemo;

/* Name of `uid`, or NULL when it has no passwd entry. The pointer stays valid
 * as long as `memo` does when memoised, else until the next call. */
const char *user_memo_name(UserMemo *memo, uid_t uid);
