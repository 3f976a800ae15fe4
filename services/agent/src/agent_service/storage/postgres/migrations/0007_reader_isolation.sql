-- What the SQL path's reader role can see or hold beyond its tables, closed here so the engine
-- holds without the guard: other sessions' in-flight SQL of the same role in pg_stat_activity
-- (every tenant's questions run as this role), the list of databases, and session advisory locks
-- (which outlive the transaction's ROLLBACK on a pooled connection, and could take the
-- migrator's lock key). Catalog privileges are per database: this changes only this one. Each is
-- revoked from PUBLIC (a grant to PUBLIC cannot be revoked for one role) and granted back to the
-- migrating role, which owns the schema and runs the application.
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT 'TABLE' AS kind, format('pg_catalog.%I', c.relname) AS name
        FROM pg_catalog.pg_class c
        WHERE c.relnamespace = 'pg_catalog'::regnamespace
          AND c.relname IN ('pg_stat_activity', 'pg_database', 'pg_stat_database',
                            'pg_stat_database_conflicts', 'pg_stat_ssl', 'pg_stat_gssapi')
        UNION ALL
        SELECT 'FUNCTION', p.oid::regprocedure::text
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'pg_catalog'::regnamespace
          AND (p.proname LIKE 'pg\_%advisory%'
               OR p.proname IN ('pg_stat_get_activity', 'pg_stat_get_backend_activity',
                                'pg_stat_get_backend_dbid', 'pg_stat_get_backend_userid',
                                'pg_database_size', 'pg_stat_get_backend_client_addr'))
    LOOP
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC', target.kind, target.name);
        EXECUTE format(
            CASE target.kind WHEN 'TABLE' THEN 'GRANT SELECT ON TABLE %s TO %I'
                 ELSE 'GRANT EXECUTE ON FUNCTION %s TO %I' END,
            target.name, current_user
        );
    END LOOP;
END
$$;

-- Temporary files of a sort or hash past work_mem: bounded per query for the reader here (a
-- superuser-only setting, so the application cannot SET it per transaction).
DO $$
BEGIN
    EXECUTE format(
        'ALTER ROLE agent_sql_reader IN DATABASE %I SET temp_file_limit = %L',
        current_database(), '64MB'
    );
END
$$;
