-- The SQL path speaks one dialect to models and to the offline provider: SQLite's date functions
-- and ROUND over floating point. These plain SQL functions give them the same meaning here, so one
-- statement answers the same on both engines. They are IMMUTABLE, not SECURITY DEFINER, and read
-- no table.

CREATE FUNCTION strftime(format text, value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$
    SELECT to_char(
        value::timestamp,
        replace(replace(replace(replace(replace(replace(replace(
            format, '%Y', 'YYYY'), '%m', 'MM'), '%d', 'DD'), '%H', 'HH24'), '%M', 'MI'),
            '%S', 'SS'), '%j', 'DDD')
    )
$$;

CREATE FUNCTION julianday(value text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$
    SELECT extract(epoch FROM value::timestamp)::double precision / 86400.0 + 2440587.5
$$;

CREATE FUNCTION round(value double precision, digits integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$
    SELECT pg_catalog.round(value::numeric, digits)::double precision
$$;
