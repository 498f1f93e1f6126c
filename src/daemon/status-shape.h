#pragma once

/* How a status names each process (docs/protocol.md): as an object, or, when
 * the request says "process_rows": true, as a row of the values alone, in
 * the order the result's "process_fields" lists (less than half the bytes
 * at 4,096 processes: what `gpukeeper status` asks for), the rows of a GPU
 * in the order the command shows them (status.c: processes_json()). */
typedef enum StatusShape {
        STATUS_OBJECTS,
        STATUS_ROWS,
        _STATUS_SHAPE_MAX,
} StatusShape;
