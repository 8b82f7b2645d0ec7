-- A least-privilege PostgreSQL role for shopstream's sink (README, "Security").
--
-- The sink writes by upsert (INSERT ... ON CONFLICT DO UPDATE), reads its stored offsets
-- and replaces an order's items (DELETE on fact_order_items only). It needs no DDL once the
-- tables exist, so:
--   1. the tables' owner runs `shopstream migrate` (as SHOPSTREAM_POSTGRES__USER=<owner>);
--   2. the same owner runs this script in the shopstream database (a superuser may run it
--      after `SET ROLE <owner>;`, so the default privileges below are the owner's):
--        psql -d shopstream -v ON_ERROR_STOP=1 -f schemas/postgres/sink_role.sql
--   3. give the role a password:  psql -d shopstream -c '\password shopstream_sink'
--   4. `shopstream run` connects as it: SHOPSTREAM_POSTGRES__USER=shopstream_sink and
--      SHOPSTREAM_POSTGRES_PASSWORD in the environment or .env.
-- Creating the role needs CREATEROLE (or a superuser). The script is idempotent: re-run it
-- after an upgrade's `shopstream migrate`. Tables that later migrations add get the same
-- privileges through the default privileges below. The role cannot create, alter, drop or
-- truncate anything, and cannot delete from any table but fact_order_items.
-- `replay --target shadow` creates a schema and tables: run it as the owner.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shopstream_sink') THEN
        CREATE ROLE shopstream_sink LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO shopstream_sink', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO shopstream_sink;

-- Every table the migrations created, and those of later migrations by the same owner.
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO shopstream_sink;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO shopstream_sink;

-- An order's items are replaced when a later revision of the order arrives.
GRANT DELETE ON fact_order_items TO shopstream_sink;

-- The migrations' bookkeeping is the owner's: the sink only reads it to see nothing is pending.
REVOKE INSERT, UPDATE ON schema_migrations FROM shopstream_sink;
