-- compose.yaml's PostgreSQL: the server's role (not a superuser, no BYPASSRLS: row-level security
-- is its second wall) owning its database. ZITADEL makes its own database with the admin role.
CREATE ROLE crm LOGIN PASSWORD 'crm' NOSUPERUSER NOBYPASSRLS NOCREATEROLE;
CREATE DATABASE crm OWNER crm;
