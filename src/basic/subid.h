/* /etc/subuid (subuid(5)): the ranges of host uids each account may map into
 * its user namespaces (rootless podman, `unshare --map-auto`). A person who
 * owns a range can act as every uid in it, so limits meant per person count
 * those uids as the owner's. Parsing is pure; reading the file is the
 * caller's. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct SubidRange {
        char owner[64];      /* the first field: a login name or a number */
        uint32_t start;
        uint32_t count;
} SubidRange;

/* Entries kept at most; lines beyond are ignored. */
#define SUBID_MAX_RANGES 4096

/* Parse the text of a subuid/subgid file: "owner:start:count" lines; blank
 * lines, '#' comments and malformed lines (a bad number, an owner of 64 bytes
 * or more, a range that wraps past 2^32) are skipped. *ret is malloc'd (NULL
 * with *ret_n 0 when nothing is valid). Returns 0 or -ENOMEM. */
int subid_parse(const char *text, size_t len, SubidRange **ret, size_t *ret_n);

/* The index of the range that holds `id`, or -1. */
ssize_t subid_find(const SubidRange *ranges, size_t n, uint32_t id);

/* How the caller turns an owner's login name into its uid: 0 with *ret_uid
 * set, or a negative errno (no such user, no answer yet). It must not block
 * (the daemon answers from its resolver's cache, never NSS on the loop). */
typedef int (*SubidLookupFunc)(const char *name, uint32_t *ret_uid, void *userdata);

/* The uid of a range's owner: the owner field when it is a number (subuid(5)
 * allows both forms), else `lookup`'s answer for the name. Returns 0 or the
 * lookup's error (-EINVAL without a lookup). */
int subid_owner_uid(const SubidRange *range, SubidLookupFunc lookup, void *userdata,
                    uint32_t *ret_uid);

/* The person behind `uid`, for limits meant per person: `uid` itself when no
 * range holds it, the owner's uid when a range does (by number or by name,
 * see subid_owner_uid), so an owner and every uid of its ranges are one
 * person whichever form its lines use. A range whose owner cannot be
 * resolved (yet) is a person of its own, 2^32 + its index: its uids are still
 * counted together, never one by one. */
uint64_t subid_person(const SubidRange *ranges, size_t n, uint32_t uid, SubidLookupFunc lookup,
                      void *userdata);
