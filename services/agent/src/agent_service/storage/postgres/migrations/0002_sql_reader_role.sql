-- The SQL path's own login role: not the owner of anything, SELECT on the tenant tables only,
-- never SUPERUSER or BYPASSRLS, so row-level security always applies to it. Roles are
-- cluster-wide: another database on the same server may have created it already (or be creating
-- it right now), hence the existence check and the tolerated duplicate.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'agent_sql_reader') THEN
        BEGIN
            CREATE ROLE agent_sql_reader LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
                NOREPLICATION NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- Enforced even when the role existed before, but only written when wrong: concurrent
    -- writes of the same shared catalog row fail ("tuple concurrently updated").
    IF EXISTS (
        SELECT FROM pg_catalog.pg_roles WHERE rolname = 'agent_sql_reader'
        AND (rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole OR rolreplication
             OR rolinherit OR NOT rolcanlogin)
    ) THEN
        ALTER ROLE agent_sql_reader NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
            NOREPLICATION NOINHERIT LOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO agent_sql_reader;
GRANT SELECT ON technicians, customers, jobs, job_overview TO agent_sql_reader;

-- set_config() would let a SELECT change app.tenant_id mid-query (a verified bypass of RLS, even
-- in a READ ONLY transaction). Nobody but the migrating role (the owner, for pg_dump/restore)
-- may call it; the application sets the tenant with SET LOCAL, which does not need it.
REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format(
        'GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO %I', current_user
    );
END
$$;

-- REVOKE only warns when the migrating role does not own set_config (it belongs to the bootstrap
-- superuser): fail the migration instead of leaving the bypass open.
DO $$
BEGIN
    IF has_function_privilege(
        'agent_sql_reader', 'pg_catalog.set_config(text, text, boolean)', 'EXECUTE'
    ) THEN
        RAISE EXCEPTION 'agent_sql_reader can still call set_config(): run the migrations as a '
            'superuser (or the managed service''s admin role) so the REVOKE takes effect';
    END IF;
END
$$;
