/*
 * Unit tests for agent/service_notify: the STATUS= text made from a /readyz answer. (What
 * the agent sends, and when, is tested against real servers in
 * tests/integration/test_service_notify.c.)
 */
#include <criterion/criterion.h>

#include <string.h>

#include "service_notify.h"

static const char *status_of(bool ready, const char *json)
{
    static char out[SERVICE_STATUS_MAX];
    service_status_text(ready, json, out, sizeof out);
    return out;
}

Test(service_notify, status_is_ready_when_readyz_is)
{
    cr_assert_str_eq(status_of(true, "{\"status\":\"ready\",\"redis\":true,\"stopping\":false}"),
                     "ready");
}

Test(service_notify, status_names_each_missing_part_in_order)
{
    const char *json = "{\"status\":\"not_ready\",\"redis\":true,\"postgres\":false,"
                       "\"schema_current\":false,\"writer_flowing\":false,\"api_sessions\":true,"
                       "\"writer\":\"down\",\"stopping\":false,\"stranded_entries\":0}";
    cr_assert_str_eq(status_of(false, json),
                     "not ready: waiting for postgres, schema_current, writer_flowing");
}

Test(service_notify, status_never_counts_stopping_false_as_missing)
{
    cr_assert_str_eq(status_of(false, "{\"redis\":false,\"stopping\":false}"),
                     "not ready: waiting for redis");
}

Test(service_notify, status_without_a_named_part_says_start_up)
{
    cr_assert_str_eq(status_of(false, ""), "not ready: waiting for start-up");
    cr_assert_str_eq(status_of(false, "\":false"), "not ready: waiting for start-up");
}

Test(service_notify, status_is_cut_to_the_buffer)
{
    char out[16];
    service_status_text(false, "{\"a_very_long_part_name\":false,\"another\":false}", out,
                        sizeof out);
    cr_assert_eq(strlen(out), sizeof out - 1);
}
