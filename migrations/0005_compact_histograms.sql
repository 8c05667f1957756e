-- exectime schema, version 5: compact rollup histograms, merged by the agent.
--
-- Until version 4 a rollup histogram was a bigint[] of packed bins (slot << 40 | count),
-- added up inside PostgreSQL by exectime.hist_merge at every upsert. Both halves cost:
-- the SQL merge took about a third of each upserted row's time, and at 8 bytes a bin (plus
-- the array's overhead) a busy day row passed the 2 kB TOAST threshold, so it was
-- compressed on every write and decompressed on every read.
--
-- From this version hist is a bytea: the bins in slot order, each as two unsigned LEB128
-- varints, the distance from the previous bin's slot and the count (common/sketch.h,
-- encoding 2). A bin takes 2-3 bytes. The agent reads the rows a batch touches, merges in
-- C and writes the sums back, under a transaction-scoped advisory lock per tenant
-- (docs/schema.md), so several agents still write at once without losing an update.
--
-- The conversion below rewrites every rollup row in place: an upgrade loses nothing, and
-- `exectime-agent verify` afterwards compares the converted rows with the raw rows.
-- Agents older than this version refuse the new sketch encoding and stop; stop them before
-- migrating (docs/operations.md).

-- One varint as hex digits, for the conversion only. Old counts are below 2^40 and slots
-- below 2^11, so seven 7-bit groups are always enough.
CREATE FUNCTION pg_temp.varint_hex(v bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT string_agg(lpad(to_hex(((v >> (7 * i)) & 127)::integer
                                  | CASE WHEN v >> (7 * (i + 1)) > 0 THEN 128 ELSE 0 END),
                           2, '0'), '' ORDER BY i)
    FROM generate_series(0, 6) i
    WHERE i = 0 OR v >> (7 * i) > 0
$$;

CREATE FUNCTION pg_temp.hist_from_packed(h bigint[]) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT decode(coalesce(string_agg(pg_temp.varint_hex(slot - prev) || pg_temp.varint_hex(count),
                                      '' ORDER BY slot), ''), 'hex')
    FROM (SELECT slot, count, coalesce(lag(slot) OVER (ORDER BY slot), 0) AS prev
          FROM (SELECT e >> 40 AS slot, sum(e & 1099511627775)::bigint AS count
                FROM unnest(h) e GROUP BY 1) bins
          WHERE count > 0) ordered
$$;

ALTER TABLE exectime.rollup_minute ALTER COLUMN hist TYPE bytea USING pg_temp.hist_from_packed(hist);
ALTER TABLE exectime.rollup_hour ALTER COLUMN hist TYPE bytea USING pg_temp.hist_from_packed(hist);
ALTER TABLE exectime.rollup_day ALTER COLUMN hist TYPE bytea USING pg_temp.hist_from_packed(hist);

-- The writer looks its keys up by a join with its staging table. Version 2's index on
-- (tenant_id, bucket) matched two of the four key columns: on a table without statistics
-- yet (a new deployment, the first minutes) the planner took it for the cheaper probe and
-- scanned every workflow of the bucket for each key, quadratic in the workflows. With all
-- four key columns either index finds one row per key, and group_by still reads a
-- tenant's bucket range in order.
DROP INDEX exectime.rollup_minute_tenant_bucket;
DROP INDEX exectime.rollup_hour_tenant_bucket;
DROP INDEX exectime.rollup_day_tenant_bucket;
CREATE INDEX rollup_minute_tenant_bucket
    ON exectime.rollup_minute (tenant_id, bucket, workflow_id, status);
CREATE INDEX rollup_hour_tenant_bucket ON exectime.rollup_hour (tenant_id, bucket, workflow_id, status);
CREATE INDEX rollup_day_tenant_bucket ON exectime.rollup_day (tenant_id, bucket, workflow_id, status);

DROP FUNCTION exectime.hist_merge(bigint[], bigint[]);
DROP FUNCTION exectime.hist_bins(bigint[]);

-- (slot, count) rows of a stored histogram, for people reading the tables by hand and for
-- checks in SQL. A truncated value raises an error (get_byte out of range).
CREATE FUNCTION exectime.hist_bins(h bytea, OUT slot integer, OUT count bigint)
RETURNS SETOF record
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    pos integer := 0;
    len integer := length(h);
    value bigint;
    shift integer;
    b integer;
    at_count boolean := false;
BEGIN
    slot := 0;
    WHILE pos < len LOOP
        value := 0;
        shift := 0;
        LOOP
            b := get_byte(h, pos);
            pos := pos + 1;
            value := value | ((b & 127)::bigint << shift);
            shift := shift + 7;
            EXIT WHEN b < 128;
        END LOOP;
        IF at_count THEN
            count := value;
            RETURN NEXT;
        ELSE
            slot := slot + value;
        END IF;
        at_count := NOT at_count;
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION exectime.hist_bins(bytea) TO exectime_writer, exectime_reader;

-- The writer stages the rows a batch touches and the sums it writes back. Reading the
-- touched rows and writing them needs no grant beyond version 1's (SELECT, INSERT, UPDATE).
UPDATE exectime.sketch_constants SET encoding = 2;

INSERT INTO exectime.schema_migrations (version, name) VALUES (5, '0005_compact_histograms');
