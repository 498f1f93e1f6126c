/* The MetricsSource (metrics/source.h) the daemon fills for its HTTP
 * listener: the narrow view of the daemon that /metrics and the dashboard's
 * API read, so that src/metrics/ needs no daemon header. */
#pragma once

#include "metrics/source.h"

typedef struct Daemon Daemon;

/* Fill *ret with callbacks reading `d` (which must outlive every use). */
void daemon_metrics_source(Daemon *d, MetricsSource *ret);
