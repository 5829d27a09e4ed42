-- System tables of crm-platform (PostgreSQL). Model tables are generated from the Catalog at
-- start-up, each with row-level security keyed by the setting `crm.org_id`.
CREATE TABLE IF NOT EXISTS crm_tenants (
    org_id        TEXT PRIMARY KEY,
    parent_org_id TEXT REFERENCES crm_tenants (org_id),
    name          TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS crm_model_tables (
    table_name  TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    ddl_hash    TEXT NOT NULL,
    migrated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
