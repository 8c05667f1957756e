/*
 * regressions — GET /api/v1/statistics/regressions (docs/api.md): the workflows whose
 * percentile (or failure rate) rose against the previous period of the same length by at
 * least a threshold, with both values, both counts, the change, a confidence that allows
 * for the sketch's relative error and for small counts, sorted by impact. It asks exactly
 * as the statistics endpoint does, through the same request life cycle (stats_request:
 * admission, tenant rule, reader sessions, claims and tenant check, prepared rows
 * statement), and merges the rows of both periods, read in one transaction, with
 * stats_answer's per-workflow merge.
 *
 * Ownership: the endpoint has no state of its own; it borrows the statistics API's
 * (stats_api_t: pool, auth, configuration). Each request's state is allocated on arrival
 * and freed by stats_request when its response is sent and its database work has
 * finished, whichever comes last. Refusals are JSON error bodies as the statistics endpoint's (400 naming the
 * parameter, 401, 403, 405, 422, 503).
 */
#ifndef EXECTIME_REGRESSIONS_H
#define EXECTIME_REGRESSIONS_H

#include <stdint.h>

#include "http_server.h"
#include "stats_answer.h"
#include "stats_query.h"

#define REGRESSIONS_API_PATH "/api/v1/statistics/regressions"

/* Handles one request to REGRESSIONS_API_PATH (any method; it answers 405 itself). */
void regressions_handle(stats_api_t *api, const http_request_t *req, http_response_t *res);

/*
 * The confidence, in [0, 1], that a percentile rose from the previous period's to the
 * current one's beyond what the sketch's relative error alpha and the sampling of the
 * quantile's rank explain (docs/api.md says how); 0 when the two values are within the
 * sketch's combined error. q is in (0, 1]; the aggregates have runs > 0.
 */
double regressions_percentile_confidence(const stats_agg_t *previous, const stats_agg_t *current,
                                         double q, double alpha);

/* The confidence, in [0, 1], that the failure rate rose: 2*Phi(z) - 1 of the pooled
 * two-proportion z-test when z > 0, else 0. */
double regressions_rate_confidence(uint64_t previous_failed, uint64_t previous_runs,
                                   uint64_t current_failed, uint64_t current_runs);

#endif
