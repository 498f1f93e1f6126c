/* An object's text read as it arrives, a member at a time, with one array
 * member handed over an element at a time (issue 16): the text view of
 * `gpukeeper status` reads a reply of a megabyte through the client's
 * buffer of 32 KiB and renders each GPU as its element arrives, never
 * holding the reply whole (a fresh page costs 7-15 us on the VMs this runs
 * on: a 1 MB reply and its index touched a thousand).
 *
 * This finds the boundaries; it checks the punctuation between members and
 * elements, not their contents: every member value and element it hands
 * over is checked by the caller's own reading of it (json_index_build()),
 * so that the whole text is accepted only when json_scan_document() would
 * accept the object it came from. Fields are private. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef enum JsonSplitEvent {
        JSON_SPLIT_MORE = 0,  /* the next item is not all there: present it again with more */
        JSON_SPLIT_MEMBER,    /* a member, whole: key and value */
        JSON_SPLIT_ARRAY,     /* the split array's member begins: key */
        JSON_SPLIT_ELEMENT,   /* one of its elements, whole: value */
        JSON_SPLIT_ARRAY_END, /* its closing bracket */
        JSON_SPLIT_END,       /* the object's closing brace */
} JsonSplitEvent;

typedef struct JsonSplitItem {
        const char *key; /* the key's text, quotes included, as written (escapes undecoded) */
        size_t key_len;
        const char *value; /* the value's text as written */
        size_t value_len;
} JsonSplitItem;

typedef struct JsonSplit {
        /* The member whose array value is handed over element by element
         * (its key written without escapes), NULL for none: the caller may
         * set it between two members (after the member that tells it the
         * array can be read that way). */
        const char *split_key;
        int state;
        size_t pos; /* where the next item starts in the current text */
        /* How far the scan of the item in progress got (from pos), when
         * it ran out of text: it goes on from there. */
        bool scan_saved;
        bool scan_in_string;
        size_t scan_at;
        size_t scan_depth;
} JsonSplit;

void json_split_init(JsonSplit *js, const char *split_key);

/* The next item of the object whose text, from its opening brace (after
 * any whitespace), is s[0..len) minus what json_split_taken() has given
 * back. `last`: nothing follows s[0..len). Returns the event, with *ret
 * pointing into s (valid while s is; all NULL and 0 but for MEMBER, ARRAY
 * and ELEMENT), or -EBADMSG when the punctuation is
 * wrong, or the text ends inside an item with `last`. After JSON_SPLIT_END
 * json_split_taken() counts the object's text up to its closing brace; what
 * follows is the caller's (every later call returns JSON_SPLIT_END). */
int json_split_next(JsonSplit *js, const char *s, size_t len, bool last, JsonSplitItem *ret);

/* The bytes of s before the item in progress, which the caller may drop
 * (the next call's s starts after them): returned once, then counted from
 * 0 again. */
size_t json_split_taken(JsonSplit *js);
