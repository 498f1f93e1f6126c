/* Fuzz target for src/proto/json-scan and json-index (issue 16): the input
 * is a JSON text; the scanner must accept it exactly when jansson's
 * json_loadb(…, 0) does (within PROTO_MAX_DEPTH), the member walk must
 * agree, the writer must print jansson's compact dump of it as
 * json_dumps(JSON_INDENT(2) | JSON_PRESERVE_ORDER) does, and the index must
 * build exactly then and hold jansson's values
 * (tests/unit/proto/json-scan-check.h). */
#include <stdint.h>
#include <stdio.h>

#include "fuzz.h"
#include "tests/unit/proto/json-scan-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *why = json_scan_check((const char *)data, size);

        if (why)
                fprintf(stderr, "json-scan differs from jansson: %s\n", why);
        CHECK(!why);
        return 0;
}
