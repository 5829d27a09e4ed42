-- System tables of crm-platform (SQLite). Model tables are generated from the Catalog at start-up.
CREATE TABLE IF NOT EXISTS crm_tenants (
    org_id        TEXT PRIMARY KEY NOT NULL,
    parent_org_id TEXT REFERENCES crm_tenants (org_id),
    name          TEXT,
    created_at    TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS crm_model_tables (
    table_name  TEXT PRIMARY KEY NOT NULL,
    model       TEXT NOT NULL,
    ddl_hash    TEXT NOT NULL,
    migrated_at TEXT NOT NULL
);
