-- exectime schema, version 4: the database refuses raw rows of days maintenance dropped.
--
-- Retention has two clocks: the agent accepts finished_at from the start of the UTC day
-- (today - raw_days + 1) by its own clock (et_retention_start), while maintain() drops raw
-- partitions wholly older than (today - raw_days) by the database's. The day between them
-- is the margin: with clocks less than a day apart, no accepted event falls in a dropped
-- day. This migration adds the backstop for a larger difference, so that a redelivered
-- event can never be stored, and rolled up, a second time whatever the clocks say: a row
-- of a dropped day can only go to the default partition (its own partition is gone and
-- maintain() creates partitions from yesterday on), and maintain() now gives that
-- partition a CHECK refusing rows older than what it keeps. The writer's insert then fails
-- with a check violation (23514) naming finished_at_within_raw_retention; the writer
-- isolates the entry and it is dead-lettered with that reason.
--
-- NOT VALID: the rows below the bound have just been deleted, so there is nothing to
-- check, and the hourly call never scans the default partition (which holds every day
-- older than yesterday after a back-fill). New rows are checked all the same.
--
-- Existing data needs no conversion: the constraint appears at the next maintain(), which
-- the agent runs at start-up and every hour.
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
    RETURN created;
END
$$;

INSERT INTO exectime.schema_migrations (version, name) VALUES (4, '0004_retention_window');
