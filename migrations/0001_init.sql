-- exectime schema, version 1: raw runs, rollups, sketch constants, roles and row-level
-- security. Applied by `exectime-agent migrate` inside one transaction; also applies with
-- plain `psql -1 -f` as a database owner that may create roles.

CREATE SCHEMA IF NOT EXISTS exectime;

CREATE TABLE exectime.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'exectime_writer') THEN
        CREATE ROLE exectime_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'exectime_reader') THEN
        CREATE ROLE exectime_reader NOLOGIN NOBYPASSRLS;
    END IF;
    -- The writer stages each batch in session-local temporary tables.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO exectime_writer', current_database());
END
$$;

GRANT USAGE ON SCHEMA exectime TO exectime_writer, exectime_reader;

-- The DDSketch constants the rollup histograms were built with (common/sketch.h). The agent
-- refuses to start when they differ from its own.
CREATE TABLE exectime.sketch_constants (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    relative_accuracy double precision NOT NULL,
    gamma double precision NOT NULL,
    encoding integer NOT NULL
);
INSERT INTO exectime.sketch_constants (relative_accuracy, gamma, encoding)
VALUES (0.01, (1 + 0.01) / (1 - 0.01), 1);

-- One row per finished run. Text keys use the C collation: byte order, cheap comparisons.
CREATE TABLE exectime.execution_time_statistics (
    tenant_id text COLLATE "C" NOT NULL CHECK (octet_length(tenant_id) BETWEEN 1 AND 64),
    workflow_id text COLLATE "C" NOT NULL CHECK (octet_length(workflow_id) BETWEEN 1 AND 128),
    run_id text COLLATE "C" NOT NULL CHECK (octet_length(run_id) BETWEEN 1 AND 128),
    status text NOT NULL CHECK (status IN ('success', 'failed', 'cancelled', 'timeout')),
    started_at timestamptz,
    finished_at timestamptz NOT NULL,
    duration_us bigint NOT NULL CHECK (duration_us BETWEEN 0 AND 2592000000000),
    -- Milliseconds for readers of the product spec's column; saturates at 2^31-1 ms (24.8
    -- days) because the spec's type is integer while runs may last 30 days.
    execution_time_ms integer GENERATED ALWAYS AS
        (LEAST(duration_us / 1000, 2147483647)::integer) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, run_id, finished_at)
) PARTITION BY RANGE (finished_at);

CREATE TABLE exectime.execution_time_statistics_default
    PARTITION OF exectime.execution_time_statistics DEFAULT;

-- Rollups: one row per (tenant, workflow, bucket, status) and resolution. workflow_id ''
-- is the tenant-wide rollup ("all workflows"); a real workflow id is never empty, so the
-- two cannot collide. status: 0 success, 1 failed, 2 cancelled, 3 timeout. hist is the
-- sparse DDSketch histogram, each element slot << 40 | count, sorted by slot.
-- fillfactor 50 keeps the frequent updates of these packed rows on the same page (HOT).
CREATE TABLE exectime.rollup_minute (
    tenant_id text COLLATE "C" NOT NULL,
    workflow_id text COLLATE "C" NOT NULL,
    bucket timestamptz NOT NULL,
    status smallint NOT NULL CHECK (status BETWEEN 0 AND 3),
    runs bigint NOT NULL,
    sum_us bigint NOT NULL,
    min_us bigint NOT NULL,
    max_us bigint NOT NULL,
    hist bigint[] NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id, bucket, status)
) WITH (fillfactor = 50);
CREATE TABLE exectime.rollup_hour (LIKE exectime.rollup_minute INCLUDING ALL)
    WITH (fillfactor = 50);
CREATE TABLE exectime.rollup_day (LIKE exectime.rollup_minute INCLUDING ALL)
    WITH (fillfactor = 50);

-- Adds two packed histograms. Used by the rollup upsert; both inputs are sorted by slot.
CREATE FUNCTION exectime.hist_merge(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg((s << 40) | c ORDER BY s)
    FROM (SELECT e >> 40 AS s, sum(e & 1099511627775)::bigint AS c
          FROM (SELECT unnest(a) AS e UNION ALL SELECT unnest(b)) u
          GROUP BY 1) g
$$;

-- (slot, count) rows of a packed histogram, for people reading the tables by hand.
CREATE FUNCTION exectime.hist_bins(h bigint[], OUT slot integer, OUT count bigint)
RETURNS SETOF record LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (e >> 40)::integer, e & 1099511627775 FROM unnest(h) e
$$;

-- The request's claims, as Supabase's PostgREST sets them (and the agent's API does).
CREATE FUNCTION exectime.request_claims() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;

-- Tenants the current request may read: the claim tenant_id or the array tenant_ids,
-- top-level or under app_metadata. A deployment may replace this function (see
-- docs/multi-tenancy.md); the policies below call it once per statement.
CREATE FUNCTION exectime.allowed_tenants() RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(DISTINCT t), '{}')
    FROM (SELECT exectime.request_claims() AS j) c,
    LATERAL (
        SELECT j ->> 'tenant_id' WHERE jsonb_typeof(j -> 'tenant_id') = 'string'
        UNION ALL
        SELECT jsonb_array_elements_text(j -> 'tenant_ids')
        WHERE jsonb_typeof(j -> 'tenant_ids') = 'array'
        UNION ALL
        SELECT j -> 'app_metadata' ->> 'tenant_id'
        WHERE jsonb_typeof(j -> 'app_metadata' -> 'tenant_id') = 'string'
        UNION ALL
        SELECT jsonb_array_elements_text(j -> 'app_metadata' -> 'tenant_ids')
        WHERE jsonb_typeof(j -> 'app_metadata' -> 'tenant_ids') = 'array'
    ) s(t)
$$;

-- True when the request may read every tenant (Supabase's service_role).
CREATE FUNCTION exectime.all_tenants_allowed() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(exectime.request_claims() ->> 'role' = 'service_role', false)
$$;

GRANT EXECUTE ON FUNCTION exectime.hist_merge(bigint[], bigint[]), exectime.hist_bins(bigint[]),
    exectime.request_claims(), exectime.allowed_tenants(), exectime.all_tenants_allowed()
    TO exectime_writer, exectime_reader;

GRANT SELECT ON exectime.schema_migrations, exectime.sketch_constants
    TO exectime_writer, exectime_reader;
GRANT SELECT, INSERT ON exectime.execution_time_statistics TO exectime_writer;
GRANT SELECT ON exectime.execution_time_statistics TO exectime_reader;
GRANT SELECT, INSERT, UPDATE ON exectime.rollup_minute, exectime.rollup_hour,
    exectime.rollup_day TO exectime_writer;
GRANT SELECT ON exectime.rollup_minute, exectime.rollup_hour, exectime.rollup_day
    TO exectime_reader;

-- Row-level security on every table. The claim functions run once per statement: they sit
-- in scalar subqueries, which PostgreSQL evaluates as init plans.
ALTER TABLE exectime.schema_migrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE exectime.sketch_constants ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON exectime.schema_migrations FOR SELECT
    TO exectime_writer, exectime_reader USING (true);
CREATE POLICY everyone_reads ON exectime.sketch_constants FOR SELECT
    TO exectime_writer, exectime_reader USING (true);

-- Enables RLS on one tenant table with the two policies every such table has. maintain()
-- calls it for each new partition: a partition read directly must be as closed as its parent.
CREATE FUNCTION exectime.secure_tenant_table(t regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, exectime AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY writer_all ON %s FOR ALL TO exectime_writer '
                   'USING (true) WITH CHECK (true)', t);
    EXECUTE format('CREATE POLICY reader_own_tenants ON %s FOR SELECT TO exectime_reader '
                   'USING ((SELECT exectime.all_tenants_allowed()) '
                   'OR tenant_id = ANY ((SELECT exectime.allowed_tenants())::text[]))', t);
END
$$;
REVOKE ALL ON FUNCTION exectime.secure_tenant_table(regclass) FROM PUBLIC;

SELECT exectime.secure_tenant_table(t::regclass)
FROM unnest(ARRAY['exectime.execution_time_statistics', 'exectime.execution_time_statistics_default',
                  'exectime.rollup_minute', 'exectime.rollup_hour', 'exectime.rollup_day']) t;

-- Creates the raw table's daily partitions from today - back_days to today + ahead_days
-- (UTC), drops partitions wholly older than raw_days, and deletes rollup rows past their
-- retention. SECURITY DEFINER: creating partitions needs the table owner, and the agent's
-- role is only a writer. A day whose rows already sit in the default partition is skipped
-- (PostgreSQL refuses the partition then); those rows stay readable there.
CREATE FUNCTION exectime.maintain(raw_days integer, minute_days integer, hour_days integer,
                                  back_days integer DEFAULT 1, ahead_days integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, exectime AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    d date;
    part text;
    created integer := 0;
    r record;
BEGIN
    FOR d IN SELECT generate_series(today - back_days, today + ahead_days, interval '1 day')::date
    LOOP
        part := 'execution_time_statistics_' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass('exectime.' || part) IS NOT NULL;
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
    DELETE FROM exectime.execution_time_statistics_default
        WHERE finished_at < (today - raw_days)::timestamp AT TIME ZONE 'UTC';
    DELETE FROM exectime.rollup_minute
        WHERE bucket < (today - minute_days)::timestamp AT TIME ZONE 'UTC';
    DELETE FROM exectime.rollup_hour
        WHERE bucket < (today - hour_days)::timestamp AT TIME ZONE 'UTC';
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION exectime.maintain(integer, integer, integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exectime.maintain(integer, integer, integer, integer, integer)
    TO exectime_writer;

SELECT exectime.maintain(30, 14, 400);

INSERT INTO exectime.schema_migrations (version, name) VALUES (1, '0001_init');
