-- tests/bench/lib/wrk.lua — wrk script of tests/bench/run: sends the API token from
-- $EXECTIME_BENCH_TOKEN and prints one machine-readable line at the end:
--   WRKJSON {"requests":…, "duration_us":…, "errors":…, "non2xx":…, "p50_us":…, …}
local token = os.getenv("EXECTIME_BENCH_TOKEN")
if token == nil or token == "" then
   io.stderr:write("wrk.lua: EXECTIME_BENCH_TOKEN is not set\n")
   os.exit(2)
end
wrk.headers["Authorization"] = "Bearer " .. token

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
      summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
      latency.max))
end
