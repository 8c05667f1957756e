-- exectime schema, version 7: queue wait beside run time.
--
-- An event may say when its run was enqueued (enqueued_at, docs/events.md); the agent
-- stores the wait it derives, from enqueued_at to the run's start, per run and in the
-- rollups, as a sketch of its own with the same guarantees as the run-time one (same
-- relative accuracy, same encoding, merged by the writer under the same tenant locks,
-- changed only by rows really inserted).
--
-- Runs without enqueued_at keep working: their queue_wait_us is NULL and they are not
-- counted in queue_runs, so runs - queue_runs is the number of runs without queue data.
-- Existing rows have no queue data, and the defaults say exactly that (0 runs with queue
-- data, an empty histogram): nothing is converted, and constant defaults add the columns
-- without rewriting the tables. This version does not depend on version 6: either may be
-- applied first.

ALTER TABLE exectime.execution_time_statistics
    ADD COLUMN queue_wait_us bigint CHECK (queue_wait_us BETWEEN 0 AND 2592000000000);

-- queue_min_us and queue_max_us mean something only when queue_runs > 0 (0 otherwise).
ALTER TABLE exectime.rollup_minute
    ADD COLUMN queue_runs bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_sum_us bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_min_us bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_max_us bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_hist bytea NOT NULL DEFAULT ''::bytea;
ALTER TABLE exectime.rollup_hour
    ADD COLUMN queue_runs bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_sum_us bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_min_us bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_max_us bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_hist bytea NOT NULL DEFAULT ''::bytea;
ALTER TABLE exectime.rollup_day
    ADD COLUMN queue_runs bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_sum_us bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_min_us bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_max_us bigint NOT NULL DEFAULT 0,
    ADD COLUMN queue_hist bytea NOT NULL DEFAULT ''::bytea;

INSERT INTO exectime.schema_migrations (version, name) VALUES (7, '0007_queue_wait');
