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
