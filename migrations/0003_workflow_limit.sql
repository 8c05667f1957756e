-- exectime schema, version 3: a per-tenant limit on distinct workflows in the rollups.
--
-- A tenant that puts a run id or a timestamp into workflow_id would otherwise create new
-- rollup rows with every event. exectime.workflows holds, per tenant, the workflows
-- admitted to the per-workflow rollups; the agent admits a new one only while the tenant
-- has fewer than EXECTIME_MAX_WORKFLOWS_PER_TENANT, under a lock on the tenant's row of
-- exectime.workflow_counts, so several agents never admit past the limit together. Runs of
-- other workflows are still stored raw and counted in the tenant-wide rollup; their
-- per-workflow rollups go to the reserved workflow id '(overflow)', which the event decoder
-- refuses (docs/schema.md). The rule is a function of this table and the raw rows, so
-- `verify` and `rollup-rebuild` apply it too.

-- '(overflow)' must not already be a real workflow's id. Every raw row has a day rollup
-- row (kept for ever), so looking there avoids scanning the raw table.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM exectime.rollup_day WHERE workflow_id = '(overflow)') THEN
        RAISE EXCEPTION 'workflow id "(overflow)" is in use, but version 3 reserves it'
            USING HINT = 'rename those runs'' workflow_id (raw and rollup rows), then migrate again';
    END IF;
END
$$;

CREATE TABLE exectime.workflows (
    tenant_id text COLLATE "C" NOT NULL,
    workflow_id text COLLATE "C" NOT NULL,
    admitted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, workflow_id)
);

-- One row per tenant: how many workflows it has admitted. Its row lock serializes the
-- admissions of one tenant across agents (other tenants are not held up).
CREATE TABLE exectime.workflow_counts (
    tenant_id text COLLATE "C" PRIMARY KEY,
    workflows integer NOT NULL
);

-- Upgrades lose nothing: every workflow that already has rollup rows is admitted, even
-- past the limit (a tenant over it then admits no new workflow until it is raised).
INSERT INTO exectime.workflows (tenant_id, workflow_id)
SELECT DISTINCT tenant_id, workflow_id FROM exectime.rollup_day WHERE workflow_id <> '';
INSERT INTO exectime.workflow_counts (tenant_id, workflows)
SELECT tenant_id, count(*) FROM exectime.workflows GROUP BY tenant_id;

GRANT SELECT, INSERT, UPDATE ON exectime.workflows, exectime.workflow_counts TO exectime_writer;
GRANT SELECT ON exectime.workflows, exectime.workflow_counts TO exectime_reader;
SELECT exectime.secure_tenant_table(t::regclass)
FROM unnest(ARRAY['exectime.workflows', 'exectime.workflow_counts']) t;

-- Admits the candidates the writer put in its session's temporary table exectime_admit
-- (tenant_id, workflow_id, load): per tenant, in tenant order (two agents lock the same
-- rows in the same order), new workflows in byte order while the tenant has fewer than
-- max_per_tenant. Returns each candidate with whether it is admitted, and for a tenant
-- with a row whose load is true, also its admitted workflows (at most max_per_tenant + 1:
-- the writer caches no more). `workflows` is the tenant's count after admission.
CREATE FUNCTION exectime.admit_workflows(max_per_tenant integer)
RETURNS TABLE (tenant_id text, workflow_id text, admitted boolean, workflows integer)
LANGUAGE plpgsql SET search_path = pg_catalog, exectime AS $$
#variable_conflict use_column
DECLARE
    t text;
    want_all boolean;
    n integer;
BEGIN
    FOR t, want_all IN
        SELECT a.tenant_id, bool_or(a.load) FROM pg_temp.exectime_admit a
        GROUP BY a.tenant_id ORDER BY a.tenant_id
    LOOP
        INSERT INTO exectime.workflow_counts (tenant_id, workflows) VALUES (t, 0)
            ON CONFLICT (tenant_id) DO NOTHING;
        SELECT c.workflows INTO n FROM exectime.workflow_counts c WHERE c.tenant_id = t
            FOR UPDATE;
        IF n < max_per_tenant THEN
            WITH added AS (
                INSERT INTO exectime.workflows (tenant_id, workflow_id)
                SELECT t, c.workflow_id FROM (
                    SELECT DISTINCT a.workflow_id FROM pg_temp.exectime_admit a
                    WHERE a.tenant_id = t AND a.workflow_id IS NOT NULL
                      AND NOT EXISTS (SELECT 1 FROM exectime.workflows k
                                      WHERE k.tenant_id = t AND k.workflow_id = a.workflow_id)
                    ORDER BY a.workflow_id LIMIT max_per_tenant - n) c
                ON CONFLICT DO NOTHING
                RETURNING 1)
            SELECT n + count(*) INTO n FROM added;
            UPDATE exectime.workflow_counts c SET workflows = n WHERE c.tenant_id = t;
        END IF;
        RETURN QUERY
            SELECT t, a.workflow_id,
                   EXISTS (SELECT 1 FROM exectime.workflows k
                           WHERE k.tenant_id = t AND k.workflow_id = a.workflow_id), n
            FROM (SELECT DISTINCT x.workflow_id FROM pg_temp.exectime_admit x
                  WHERE x.tenant_id = t AND x.workflow_id IS NOT NULL) a;
        IF want_all THEN
            RETURN QUERY
                SELECT t, k.workflow_id, true, n FROM exectime.workflows k
                WHERE k.tenant_id = t ORDER BY k.workflow_id LIMIT max_per_tenant + 1;
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION exectime.admit_workflows(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION exectime.admit_workflows(integer) TO exectime_writer;

INSERT INTO exectime.schema_migrations (version, name) VALUES (3, '0003_workflow_limit');
