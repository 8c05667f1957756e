-- exectime schema, version 2: a cheaper read path for the statistics API.
--
-- allowed_tenants() runs once per table per statement (an init plan). As a SQL function
-- with set-returning parts PostgreSQL re-plans its body at every call (~0.5 ms); PL/pgSQL
-- keeps its plans for the session, which makes the call ~10x cheaper. Same result: the
-- claim tenant_id and the array tenant_ids, top-level or under app_metadata.
CREATE OR REPLACE FUNCTION exectime.allowed_tenants() RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    claims jsonb := exectime.request_claims();
    app jsonb := claims -> 'app_metadata';
    tenants text[] := '{}';
BEGIN
    IF jsonb_typeof(claims -> 'tenant_id') = 'string' THEN
        tenants := tenants || (claims ->> 'tenant_id');
    END IF;
    IF jsonb_typeof(claims -> 'tenant_ids') = 'array' THEN
        tenants := tenants || ARRAY(SELECT jsonb_array_elements_text(claims -> 'tenant_ids'));
    END IF;
    IF jsonb_typeof(app -> 'tenant_id') = 'string' THEN
        tenants := tenants || (app ->> 'tenant_id');
    END IF;
    IF jsonb_typeof(app -> 'tenant_ids') = 'array' THEN
        tenants := tenants || ARRAY(SELECT jsonb_array_elements_text(app -> 'tenant_ids'));
    END IF;
    RETURN tenants;
END
$$;

-- group_by=workflow reads every workflow of a tenant over a time range: without this
-- index the bucket range could not bound the scan (the primary key puts workflow_id
-- before bucket). Updates of existing rollup rows change neither column, so they stay HOT.
CREATE INDEX rollup_minute_tenant_bucket ON exectime.rollup_minute (tenant_id, bucket);
CREATE INDEX rollup_hour_tenant_bucket ON exectime.rollup_hour (tenant_id, bucket);
CREATE INDEX rollup_day_tenant_bucket ON exectime.rollup_day (tenant_id, bucket);

INSERT INTO exectime.schema_migrations (version, name) VALUES (2, '0002_api_read_path');
