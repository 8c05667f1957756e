-- exectime schema, version 6: the statistics API's summary as a SQL function, for
-- Supabase (supabase.rpc) and PostgREST, and for anyone with psql (docs/sql.md).
--
-- exectime.execution_time_stats(...) answers what GET /api/v1/statistics/execution-times
-- answers without interval, group_by and include: the same rollup rows, chosen the same
-- way (agent/query_plan.c), the same bins merged, every percentile read by the same rule
-- (common/sketch.c, et_hist_quantile) in the same double arithmetic, so both give the same
-- numbers. It is SECURITY INVOKER: the caller's role and its request.jwt.claims decide,
-- through row-level security, which rows it reads, as they do for the API's transaction.
--
-- Every statement below may run again over its own result (IF NOT EXISTS, OR REPLACE, DROP
-- IF EXISTS first), so a database restored with this version's objects but without its
-- schema_migrations row migrates too.

-- The rollup retention the agents run with. The API plans around buckets past retention
-- from its configuration (EXECTIME_MINUTE/HOUR_RETENTION_DAYS); SQL has no configuration,
-- so maintain(), which every agent calls with those values at start-up and hourly, records
-- them here. Until an agent has run maintain() the row holds the configuration's defaults.
CREATE TABLE IF NOT EXISTS exectime.rollup_retention (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    minute_days integer NOT NULL,
    hour_days integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO exectime.rollup_retention (minute_days, hour_days) VALUES (14, 400)
    ON CONFLICT (singleton) DO NOTHING;
GRANT SELECT ON exectime.rollup_retention TO exectime_writer, exectime_reader;
ALTER TABLE exectime.rollup_retention ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS everyone_reads ON exectime.rollup_retention;
CREATE POLICY everyone_reads ON exectime.rollup_retention FOR SELECT
    TO exectime_writer, exectime_reader USING (true);

-- Version 4's maintain(), and it records minute_days and hour_days (written only when they
-- change: the hourly call leaves the row alone).
CREATE OR REPLACE FUNCTION exectime.maintain(raw_days integer, minute_days integer, hour_days integer,
                                             back_days integer DEFAULT 1, ahead_days integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, exectime AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    raw_kept_from timestamptz := (today - raw_days)::timestamp AT TIME ZONE 'UTC';
    d date;
    part text;
    created integer := 0;
    r record;
BEGIN
    FOR d IN SELECT generate_series(today - back_days, today + ahead_days, interval '1 day')::date
    LOOP
        part := 'execution_time_statistics_' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass('exectime.' || part) IS NOT NULL;
        -- A day maintenance no longer keeps is not created again (back_days > raw_days).
        CONTINUE WHEN d < today - raw_days;
        BEGIN
            EXECUTE format('CREATE TABLE exectime.%I PARTITION OF exectime.execution_time_statistics '
                           'FOR VALUES FROM (%L) TO (%L)', part,
                           (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
            PERFORM exectime.secure_tenant_table(('exectime.' || quote_ident(part))::regclass);
            created := created + 1;
        EXCEPTION WHEN check_violation THEN
            RAISE NOTICE 'partition % skipped: its rows are in the default partition', part;
        END;
    END LOOP;

    FOR r IN SELECT c.relname FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE i.inhparent = 'exectime.execution_time_statistics'::regclass
               AND n.nspname = 'exectime'
               AND c.relname ~ '^execution_time_statistics_[0-9]{8}$'
               AND to_date(right(c.relname, 8), 'YYYYMMDD') < today - raw_days
    LOOP
        EXECUTE format('DROP TABLE exectime.%I', r.relname);
    END LOOP;
    DELETE FROM exectime.execution_time_statistics_default WHERE finished_at < raw_kept_from;
    EXECUTE format('ALTER TABLE exectime.execution_time_statistics_default'
                   ' DROP CONSTRAINT IF EXISTS finished_at_within_raw_retention,'
                   ' ADD CONSTRAINT finished_at_within_raw_retention'
                   ' CHECK (finished_at >= %L::timestamptz) NOT VALID', raw_kept_from);
    DELETE FROM exectime.rollup_minute
        WHERE bucket < (today - minute_days)::timestamp AT TIME ZONE 'UTC';
    DELETE FROM exectime.rollup_hour
        WHERE bucket < (today - hour_days)::timestamp AT TIME ZONE 'UTC';
    INSERT INTO exectime.rollup_retention AS k (minute_days, hour_days)
        VALUES (maintain.minute_days, maintain.hour_days)
        ON CONFLICT (singleton) DO UPDATE
            SET minute_days = excluded.minute_days, hour_days = excluded.hour_days,
                updated_at = now()
            WHERE (k.minute_days, k.hour_days) IS DISTINCT FROM (excluded.minute_days, excluded.hour_days);
    RETURN created;
END
$$;

-- The rollup pieces that cover [start_date, end_date) (both whole minutes) with the fewest
-- rows, widened where minute or hour buckets are past retention: plan_range() of
-- agent/query_plan.c with max_res = day, step for step, so the function reads exactly
-- the rows the API reads. resolution: 0 minute, 1 hour, 2 day; pieces in time order.
-- UTC throughout: date_trunc(..., 'UTC') and fixed-length intervals, never the session's
-- time zone.
CREATE OR REPLACE FUNCTION exectime.stats_plan(start_date timestamptz, end_date timestamptz,
                                               minute_oldest timestamptz, hour_oldest timestamptz,
                                               OUT resolution smallint, OUT bucket_from timestamptz,
                                               OUT bucket_to timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, exectime AS $$
DECLARE
    s timestamptz := start_date;
    e timestamptz := end_date;
    p record;
    lo timestamptz;
    hi timestamptz;
    moved boolean;
BEGIN
    IF s IS NULL OR e IS NULL OR s >= e OR date_trunc('minute', s, 'UTC') <> s
       OR date_trunc('minute', e, 'UTC') <> e THEN
        RAISE EXCEPTION 'stats_plan: [%, %) is not a range of whole minutes', s, e
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Decompose; while a used bucket no longer exists, widen and decompose again (at most
    -- four times: each widening moves an edge outwards to a coarser boundary).
    LOOP
        moved := false;
        FOR p IN SELECT * FROM exectime.stats_plan_pieces(s, e) LOOP
            IF p.resolution = 0 AND p.bucket_from < minute_oldest THEN
                lo := date_trunc('hour', p.bucket_from, 'UTC');
                hi := least(p.bucket_to, minute_oldest);
                hi := CASE WHEN date_trunc('hour', hi, 'UTC') = hi THEN hi
                           ELSE date_trunc('hour', hi, 'UTC') + interval '1 hour' END;
            ELSIF p.resolution = 1 AND p.bucket_from < hour_oldest THEN
                lo := date_trunc('day', p.bucket_from, 'UTC');
                hi := least(p.bucket_to, hour_oldest);
                hi := CASE WHEN date_trunc('day', hi, 'UTC') = hi THEN hi
                           ELSE date_trunc('day', hi, 'UTC') + interval '24 hours' END;
            ELSE
                CONTINUE;
            END IF;
            IF lo < s OR hi > e THEN
                s := least(s, lo);
                e := greatest(e, hi);
                moved := true;
                EXIT;
            END IF;
        END LOOP;
        EXIT WHEN NOT moved;
    END LOOP;
    RETURN QUERY SELECT * FROM exectime.stats_plan_pieces(s, e);
END
$$;

-- The canonical decomposition of [s, e) (whole minutes): the whole UTC days inside it,
-- then in each part left over the whole hours, then the minutes at the edges. No two
-- neighbours share a resolution, so nothing needs joining.
CREATE OR REPLACE FUNCTION exectime.stats_plan_pieces(s timestamptz, e timestamptz,
                                                      OUT resolution smallint,
                                                      OUT bucket_from timestamptz,
                                                      OUT bucket_to timestamptz)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, exectime AS $$
    WITH days AS (
        SELECT CASE WHEN date_trunc('day', s, 'UTC') = s THEN s
                    ELSE date_trunc('day', s, 'UTC') + interval '24 hours' END AS d1,
               date_trunc('day', e, 'UTC') AS d2
    ), parts AS ( -- what days leave to hours and minutes
        SELECT a, b FROM days, LATERAL (VALUES (s, d1), (d2, e)) v(a, b) WHERE d1 < d2
        UNION ALL
        SELECT s, e FROM days WHERE d1 >= d2
    ), hours AS (
        SELECT a, b,
               CASE WHEN date_trunc('hour', a, 'UTC') = a THEN a
                    ELSE date_trunc('hour', a, 'UTC') + interval '1 hour' END AS h1,
               date_trunc('hour', b, 'UTC') AS h2
        FROM parts WHERE a < b
    )
    SELECT r::smallint, f, t FROM (
        SELECT 2, d1, d2 FROM days WHERE d1 < d2
        UNION ALL
        SELECT v.* FROM hours, LATERAL (VALUES (0, a, h1), (1, h1, h2), (0, h2, b)) v(r, f, t)
        WHERE h1 < h2
        UNION ALL
        SELECT 0, a, b FROM hours WHERE h1 >= h2
    ) pieces(r, f, t)
    WHERE f < t
    ORDER BY f
$$;

-- One row: the summary fields of the API's answer (docs/api.md, Response), in the same
-- units; the percentiles keyed as the API keys them.
-- Created once: a second run keeps the type, and with it whatever was built on it (the
-- Supabase wrapper of docs/sql.md), and keeps the function's grants (OR REPLACE).
DO $$
BEGIN
    IF to_regtype('exectime.execution_time_summary') IS NULL THEN
        CREATE TYPE exectime.execution_time_summary AS (
            tenant_id text,
            workflow_id text,             -- NULL: all workflows
            status text,                  -- 'all' or the canonical list, 'failed,timeout'
            start_date timestamptz,       -- the range covered: whole minutes, maybe widened
            end_date timestamptz,
            count bigint,
            failed bigint,                -- runs that ended failed or timeout
            avg_ms double precision,      -- NULL (like every statistic) when count is 0
            median_ms double precision,
            min_ms double precision,
            max_ms double precision,
            percentiles jsonb,            -- {"p50": 790.1, "p99.9": ...}
            relative_error double precision,
            coarsened boolean             -- minute/hour buckets past retention widened the range
        );
    END IF;
END
$$;

-- Parameters as the API's (NULL means its default): tenant_id the claims' only tenant,
-- workflow_id all workflows, end_date now, start_date end_date - 24 hours, percentiles
-- {50,90,95,99} (in percent, up to 6 decimals), status all. Wrong parameters raise 22023
-- (PostgREST: 400) with the parameter's name first in the message; a tenant the claims do
-- not allow raises 42501 (PostgREST: 403), as the API answers 403.
CREATE OR REPLACE FUNCTION exectime.execution_time_stats(tenant_id text DEFAULT NULL,
                                                         workflow_id text DEFAULT NULL,
                                                         start_date timestamptz DEFAULT NULL,
                                                         end_date timestamptz DEFAULT NULL,
                                                         percentiles double precision[] DEFAULT NULL,
                                                         status text[] DEFAULT NULL)
RETURNS exectime.execution_time_summary
LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, exectime AS $$
#variable_conflict use_column
DECLARE
    req_tenant text := execution_time_stats.tenant_id;
    req_workflow text := execution_time_stats.workflow_id;
    req_pcts double precision[] := coalesce(execution_time_stats.percentiles, '{50,90,95,99}');
    req_status text[] := execution_time_stats.status;
    now_ts timestamptz := now();
    claimed text[] := ARRAY(SELECT DISTINCT t FROM unnest(exectime.allowed_tenants()) t);
    every_tenant boolean := exectime.all_tenants_allowed();
    answer exectime.execution_time_summary;
    status_codes smallint[] := '{}';
    status_names constant text[] := '{success,failed,cancelled,timeout}';
    code smallint;
    pct double precision;
    millionths bigint;
    seen_millionths bigint[] := '{}';
    keys text[] := '{}';
    qs double precision[] := '{}';
    s timestamptz;
    e timestamptz;
    minute_days integer;
    hour_days integer;
    today timestamptz := date_trunc('day', now(), 'UTC');
    ranges timestamptz[] := array_fill(now(), ARRAY[10]); -- minute 1, minute 2, hour 1, hour 2, day
    used integer[] := '{0,0,0}';
    p record;
    sum_us numeric;
    min_us bigint;
    max_us bigint;
    slots integer[];
    seens bigint[];
    total bigint;
    gamma double precision;
    rank double precision;
    rownum bigint;
    v double precision;
    median double precision;
    pct_values jsonb := '{}';
BEGIN
    -- tenant_id: given, or the claims' only tenant.
    IF req_tenant IS NULL THEN
        IF cardinality(claimed) = 1 AND NOT every_tenant THEN
            req_tenant := claimed[1];
        ELSE
            RAISE EXCEPTION 'tenant_id: required: %', CASE WHEN cardinality(claimed) = 0 AND NOT every_tenant
                THEN 'the claims name no tenant' ELSE 'the claims allow several tenants' END
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    ELSIF octet_length(req_tenant) NOT BETWEEN 1 AND 64 THEN
        RAISE EXCEPTION 'tenant_id: must be 1 to 64 bytes' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(req_workflow) NOT BETWEEN 1 AND 128 THEN
        RAISE EXCEPTION 'workflow_id: must be 1 to 128 bytes (NULL for all workflows)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- status: NULL or {all}, or distinct statuses (MeshHook's succeeded and canceled too).
    IF req_status IS NULL OR req_status = '{all}' THEN
        status_codes := '{0,1,2,3}';
    ELSE
        IF cardinality(req_status) = 0 THEN
            RAISE EXCEPTION 'status: must not be empty (NULL for all)' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR i IN 1 .. cardinality(req_status) LOOP
            code := CASE req_status[i] WHEN 'success' THEN 0 WHEN 'succeeded' THEN 0
                        WHEN 'failed' THEN 1 WHEN 'cancelled' THEN 2 WHEN 'canceled' THEN 2
                        WHEN 'timeout' THEN 3 END;
            IF code IS NULL THEN
                RAISE EXCEPTION 'status: unknown status "%": use all, success, failed, cancelled or timeout',
                    left(coalesce(req_status[i], 'NULL'), 40) USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF code = ANY (status_codes) THEN
                RAISE EXCEPTION 'status: lists % more than once', status_names[code + 1]
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            status_codes := status_codes || code;
        END LOOP;
    END IF;
    answer.status := CASE WHEN cardinality(status_codes) = 4 THEN 'all'
                       ELSE (SELECT string_agg(status_names[c + 1], ',' ORDER BY c)
                             FROM unnest(status_codes) c) END;

    -- percentiles: as the API reads them, exact millionths, q = millionths / 10^8 (one
    -- correctly rounded division, so 99.9 gives the API's q), key "p" + canonical spelling.
    IF cardinality(req_pcts) NOT BETWEEN 1 AND 20 THEN
        RAISE EXCEPTION 'percentiles: must list 1 to 20 percentiles' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH pct IN ARRAY req_pcts LOOP
        IF pct IS NULL OR pct = 'NaN' OR NOT (pct > 0 AND pct <= 100) THEN
            RAISE EXCEPTION 'percentiles: has %: a percentile must be above 0 and at most 100',
                coalesce(pct::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
        END IF;
        millionths := round(pct * 1000000);
        IF abs(pct * 1000000 - millionths) > 0.001 THEN
            RAISE EXCEPTION 'percentiles: has %: at most 6 digits after the point', pct
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF millionths = ANY (seen_millionths) THEN
            RAISE EXCEPTION 'percentiles: lists the percentile % more than once', pct
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        seen_millionths := seen_millionths || millionths;
        qs := qs || (millionths::double precision / 100000000::double precision);
        keys := keys || ('p' || (millionths / 1000000)::text
                         || CASE WHEN millionths % 1000000 = 0 THEN ''
                                 ELSE '.' || rtrim(lpad((millionths % 1000000)::text, 6, '0'), '0') END);
    END LOOP;

    -- The range: end now, start 24 hours before the end; each given date in [2000-01-01,
    -- now + 1 day]; start < end as given; then widened to whole minutes.
    IF start_date < '2000-01-01T00:00:00Z' OR start_date > now_ts + interval '24 hours' THEN
        RAISE EXCEPTION 'start_date: must be from 2000-01-01 to 1 day from now' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF end_date < '2000-01-01T00:00:00Z' OR end_date > now_ts + interval '24 hours' THEN
        RAISE EXCEPTION 'end_date: must be from 2000-01-01 to 1 day from now' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    e := coalesce(end_date, now_ts);
    s := coalesce(start_date, e - interval '24 hours');
    IF s >= e THEN
        IF end_date IS NULL THEN
            RAISE EXCEPTION 'start_date: must be before end_date, which defaults to now'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RAISE EXCEPTION 'end_date: must be after start_date' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    s := date_trunc('minute', s, 'UTC');
    e := CASE WHEN date_trunc('minute', e, 'UTC') = e THEN e
              ELSE date_trunc('minute', e, 'UTC') + interval '1 minute' END;

    -- The API's tenant check (its 403), with the very condition of the reader policies.
    -- The rows below are read under those policies all the same.
    IF NOT (every_tenant OR req_tenant = ANY (claimed)) THEN
        RAISE EXCEPTION 'tenant_id: these claims may not read tenant "%"', left(req_tenant, 64)
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    SELECT k.minute_days, k.hour_days INTO minute_days, hour_days FROM exectime.rollup_retention k;
    minute_days := coalesce(minute_days, 14);
    hour_days := coalesce(hour_days, 400);
    -- The writer's bound (et_retention_start): it writes no minute or hour rows older.
    FOR p IN SELECT * FROM exectime.stats_plan(s, e, today - (minute_days - 1) * interval '24 hours',
                                               today - (hour_days - 1) * interval '24 hours') LOOP
        -- A canonical plan has at most two pieces of minutes, two of hours, one of days.
        used[p.resolution + 1] := used[p.resolution + 1] + 1;
        ranges[p.resolution * 4 + used[p.resolution + 1] * 2 - 1] := p.bucket_from;
        ranges[p.resolution * 4 + used[p.resolution + 1] * 2] := p.bucket_to;
        answer.start_date := least(answer.start_date, p.bucket_from);
        answer.end_date := greatest(answer.end_date, p.bucket_to);
    END LOOP;

    -- The rows, under row-level security; '' is the tenant-wide rollup. Unused ranges are
    -- empty (from = to).
    WITH picked AS MATERIALIZED (
        SELECT r.status, r.runs, r.sum_us, r.min_us, r.max_us, r.hist FROM exectime.rollup_minute r
        WHERE r.tenant_id = req_tenant AND r.workflow_id = coalesce(req_workflow, '')
          AND r.status = ANY (status_codes)
          AND ((r.bucket >= ranges[1] AND r.bucket < ranges[2]) OR (r.bucket >= ranges[3] AND r.bucket < ranges[4]))
        UNION ALL
        SELECT r.status, r.runs, r.sum_us, r.min_us, r.max_us, r.hist FROM exectime.rollup_hour r
        WHERE r.tenant_id = req_tenant AND r.workflow_id = coalesce(req_workflow, '')
          AND r.status = ANY (status_codes)
          AND ((r.bucket >= ranges[5] AND r.bucket < ranges[6]) OR (r.bucket >= ranges[7] AND r.bucket < ranges[8]))
        UNION ALL
        SELECT r.status, r.runs, r.sum_us, r.min_us, r.max_us, r.hist FROM exectime.rollup_day r
        WHERE r.tenant_id = req_tenant AND r.workflow_id = coalesce(req_workflow, '')
          AND r.status = ANY (status_codes)
          AND r.bucket >= ranges[9] AND r.bucket < ranges[10]
    ), bins AS (
        SELECT b.slot, sum(b.count) AS count FROM picked, exectime.hist_bins(picked.hist) b GROUP BY b.slot
    )
    SELECT coalesce(sum(runs), 0), coalesce(sum(runs) FILTER (WHERE status IN (1, 3)), 0),
           sum(picked.sum_us), min(picked.min_us), max(picked.max_us),
           (SELECT array_agg(slot ORDER BY slot) FROM bins),
           (SELECT array_agg(c::bigint ORDER BY slot) FROM (SELECT slot, sum(count) OVER (ORDER BY slot) AS c FROM bins) w)
    INTO answer.count, answer.failed, sum_us, min_us, max_us, slots, seens
    FROM picked;

    -- et_hist_quantile: rank ceil(q * n) in double (as percentile_disc), at least 1 and at
    -- most n; the first slot whose running count reaches it; its value 2γ^(slot-1)/(γ+1)
    -- (0 for slot 0) clamped to [min, max]. γ is computed from relative_accuracy in
    -- double, as the C does, not read from the gamma column (set from a numeric there).
    SELECT k.relative_accuracy, (1::double precision + k.relative_accuracy) / (1::double precision - k.relative_accuracy)
    INTO answer.relative_error, gamma FROM exectime.sketch_constants k;
    total := seens[cardinality(seens)];
    FOR i IN 0 .. cardinality(qs) LOOP
        v := NULL;
        IF answer.count > 0 AND total > 0 THEN
            rank := ceil((CASE WHEN i = 0 THEN 0.5 ELSE qs[i] END) * total::double precision);
            rownum := CASE WHEN rank < 1 THEN 1 WHEN rank >= total::double precision THEN total
                           ELSE rank::bigint END;
            FOR j IN 1 .. cardinality(slots) LOOP
                IF seens[j] >= rownum THEN
                    v := CASE WHEN slots[j] = 0 THEN 0::double precision
                              ELSE 2::double precision * power(gamma, (slots[j] - 1)::double precision)
                                   / (gamma + 1::double precision) END;
                    v := greatest(least(v, max_us::double precision), min_us::double precision);
                    v := v / 1000::double precision;
                    EXIT;
                END IF;
            END LOOP;
        END IF;
        IF i = 0 THEN
            median := v;
        ELSE
            pct_values := pct_values || jsonb_build_object(keys[i], v);
        END IF;
    END LOOP;

    answer.tenant_id := req_tenant;
    answer.workflow_id := req_workflow;
    IF answer.count > 0 THEN
        answer.avg_ms := (sum_us::double precision / answer.count::double precision) / 1000::double precision;
        answer.median_ms := median;
        answer.min_ms := min_us::double precision / 1000::double precision;
        answer.max_ms := max_us::double precision / 1000::double precision;
    END IF;
    answer.percentiles := pct_values;
    answer.coarsened := answer.start_date <> s OR answer.end_date <> e;
    RETURN answer;
END
$$;

REVOKE ALL ON FUNCTION exectime.execution_time_stats(text, text, timestamptz, timestamptz,
                                                     double precision[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exectime.execution_time_stats(text, text, timestamptz, timestamptz,
                                                        double precision[], text[]),
    exectime.stats_plan(timestamptz, timestamptz, timestamptz, timestamptz),
    exectime.stats_plan_pieces(timestamptz, timestamptz)
    TO exectime_reader;

-- Lets another role call the function: what a Supabase project runs once for its
-- `authenticated` role (docs/sql.md). Granting exectime_reader itself would not do there:
-- Supabase's API roles are NOINHERIT, so they would neither get its privileges nor come
-- under its policies. Instead the role gets exactly what the function reads, SELECT on
-- the rollups and their constants under a policy of its own with the reader's condition,
-- and nothing else (not the raw runs). Run by the schema's owner; idempotent. Not called
-- here: the roles exist on Supabase, not everywhere.
CREATE OR REPLACE FUNCTION exectime.grant_statistics_reader(grantee regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, exectime AS $$
DECLARE
    t text;
    policy text := left(replace(grantee::text, '"', '') || '_reads_own_tenants', 63);
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA exectime TO %s', grantee);
    EXECUTE format('GRANT EXECUTE ON FUNCTION exectime.execution_time_stats(text, text, timestamptz,'
                   ' timestamptz, double precision[], text[]),'
                   ' exectime.stats_plan(timestamptz, timestamptz, timestamptz, timestamptz),'
                   ' exectime.stats_plan_pieces(timestamptz, timestamptz) TO %s', grantee);
    FOREACH t IN ARRAY ARRAY['sketch_constants', 'rollup_retention'] LOOP
        EXECUTE format('GRANT SELECT ON exectime.%I TO %s', t, grantee);
        EXECUTE format('DROP POLICY IF EXISTS %I ON exectime.%I', policy, t);
        EXECUTE format('CREATE POLICY %I ON exectime.%I FOR SELECT TO %s USING (true)',
                       policy, t, grantee);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['rollup_minute', 'rollup_hour', 'rollup_day'] LOOP
        EXECUTE format('GRANT SELECT ON exectime.%I TO %s', t, grantee);
        EXECUTE format('DROP POLICY IF EXISTS %I ON exectime.%I', policy, t);
        EXECUTE format('CREATE POLICY %I ON exectime.%I FOR SELECT TO %s '
                       'USING ((SELECT exectime.all_tenants_allowed()) '
                       'OR tenant_id = ANY ((SELECT exectime.allowed_tenants())::text[]))',
                       policy, t, grantee);
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION exectime.grant_statistics_reader(regrole) FROM PUBLIC;

INSERT INTO exectime.schema_migrations (version, name) VALUES (6, '0006_sql_statistics')
    ON CONFLICT (version) DO NOTHING;
