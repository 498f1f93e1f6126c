/* The client library's call that hands over a reply's result as text
 * (issue 16), for the CLI's --json views, which print the daemon's result
 * and need no tree of it. Not in include/gpukeeper/client.h: the text is
 * borrowed from the connection's receive buffer, a lifetime too easy to get
 * wrong for the library's outside users, and its only user is the CLI. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gpukeeper/client.h"
#include "proto/json-index.h"

/* gk_client_call() that skips the tree where it can: an ok reply that
 * proto_scan_ok_reply() reads (src/proto/proto.h) returns 0 with *ret_text /
 * *ret_len the result object's JSON text (as the daemon wrote it, not
 * NUL-terminated, valid until the next call on `c` or gk_client_free(c)) and
 * *ret_result NULL (when not NULL). Any other ok reply is parsed as
 * gk_client_call() parses it: 0, *ret_text NULL, and *ret_result set (when
 * ret_result is NULL the result is dropped). Everything else (error replies,
 * events and their handler, the id check, sticky transport errors and the
 * return values) is gk_client_call()'s. */
int gk_client_call_text(gk_client *c, const char *op, json_t *args, const char **ret_text,
                        size_t *ret_len, json_t **ret_result, gk_call_error *ret_error);

/* gk_client_call_text() for a caller that prints the result as
 * json_scan_write_indented() prints it (the --json views): an ok reply whose
 * frame starts as the daemon writes one (proto_ok_reply_prefix(), the result
 * an object) is read through a buffer of 32 KiB, checked and written to `f`
 * as it arrives, without the reply ever being in memory whole: 0 with
 * *ret_written true and *ret_text (and *ret_result) NULL.
 * Should it turn out invalid part-way (never for replies gpukeeperd
 * writes), what was written of it stays written, and the call fails as
 * gk_client_call() fails on such a reply (-EBADMSG, sticky). Any other
 * reply: as gk_client_call_text(), *ret_written false. */
int gk_client_call_write(gk_client *c, const char *op, json_t *args, FILE *f, bool *ret_written,
                         const char **ret_text, size_t *ret_len, json_t **ret_result,
                         gk_call_error *ret_error);

/* What reads an ok reply's result as it arrives (gk_client_call_sink()). */
typedef struct gk_result_sink {
        /* s[0..len): the result's text not taken yet, then what came since
         * (json_scan_stream_feed()'s contract): 1 once the result's value
         * ended at s[*ret_taken], 0 for more (s[0..*ret_taken) taken; the
         * rest comes again with what follows it), or a negative errno
         * (-EBADMSG: the text is not valid), which fails the call. `last`:
         * nothing follows s[0..len). */
        int (*feed)(void *userdata, const char *s, size_t len, bool last, size_t *ret_taken);
        /* After the reply's rest was read and checked: 0 or a negative
         * errno. May be NULL. */
        int (*finish)(void *userdata);
        void *userdata;
} gk_result_sink;

/* gk_client_call_write() with the result handed to `sink` instead of
 * written: the same replies are streamed, and the same others come back
 * as text or as a tree (*ret_written false). An error of the sink's fails
 * the call as an invalid reply does (sticky). */
int gk_client_call_sink(gk_client *c, const char *op, json_t *args, const gk_result_sink *sink,
                        bool *ret_written, const char **ret_text, size_t *ret_len,
                        json_t **ret_result, gk_call_error *ret_error);

/* gk_client_call_text() for the CLI's text views, which read the result
 * through an index (src/proto/json-index.h): the reply is checked and
 * indexed in one pass. An ok reply proto_index_ok_reply() reads returns 0
 * with *ret_index the index of the whole frame (the caller frees it with
 * json_index_free(); it borrows the connection's receive buffer, so it is
 * valid until the next call on `c` or gk_client_free(c)) and
 * *ret_index_result the result object's ref in it. Any other ok reply:
 * *ret_index NULL and *ret_result as gk_client_call() sets it. Everything
 * else is gk_client_call()'s, plus -ENOMEM when the index has no room. */
int gk_client_call_index(gk_client *c, const char *op, json_t *args, JsonIndex **ret_index,
                         JsonIndexRef *ret_index_result, json_t **ret_result,
                         gk_call_error *ret_error);
