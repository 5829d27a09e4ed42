-- Tenant-defined metadata (SQLite): custom fields and custom objects, stored per tenant and
-- versioned, so every server instance can tell a tenant's schema changed without a restart.
ALTER TABLE crm_tenants ADD COLUMN metadata_version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS crm_metadata (
    org_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,          -- 'field' or 'object'
    model      TEXT NOT NULL,          -- the model a field belongs to; the object's own name
    name       TEXT NOT NULL,          -- the field's name; '' for an object
    definition TEXT NOT NULL,          -- the FieldDef / ModelDef JSON form
    active     INTEGER NOT NULL DEFAULT 1,
    position   INTEGER NOT NULL,       -- declaration order within the tenant
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (org_id, kind, model, name)
);

-- The records of every tenant's custom objects: one shared table, never per-tenant DDL. The
-- values are the JSON object `custom`, keyed by field name, like custom fields on model tables.
CREATE TABLE IF NOT EXISTS crm_records (
    org_id     TEXT NOT NULL,
    id         TEXT NOT NULL,
    object     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    version    INTEGER NOT NULL DEFAULT 1,
    deleted_at TEXT,
    custom     TEXT,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX IF NOT EXISTS ix_crm_records_object ON crm_records (org_id, object, created_at);

-- Property history of custom values: one row per key of `custom` whose value changed.
CREATE TRIGGER IF NOT EXISTS crm_records_custom_ins AFTER INSERT ON crm_records WHEN NEW.custom IS NOT NULL BEGIN
    INSERT INTO crm_history (org_id, model, record_id, field, old_value, new_value, changed_at, changed_by)
    SELECT NEW.org_id, NEW.object, NEW.id, e.key, NULL, NEW.custom -> e.key, NEW.created_at, NEW.created_by
    FROM json_each(NEW.custom) AS e WHERE e.type <> 'null' ORDER BY e.key;
END;
CREATE TRIGGER IF NOT EXISTS crm_records_custom_upd AFTER UPDATE ON crm_records WHEN OLD.custom IS NOT NEW.custom BEGIN
    INSERT INTO crm_history (org_id, model, record_id, field, old_value, new_value, changed_at, changed_by)
    SELECT NEW.org_id, NEW.object, NEW.id, k.key, NULLIF(OLD.custom -> k.key, 'null'), NULLIF(NEW.custom -> k.key, 'null'),
        NEW.updated_at, NEW.updated_by
    FROM (SELECT key FROM json_each(COALESCE(OLD.custom, '{}')) UNION SELECT key FROM json_each(COALESCE(NEW.custom, '{}'))) AS k
    WHERE COALESCE(OLD.custom -> k.key, 'null') IS NOT COALESCE(NEW.custom -> k.key, 'null')
    ORDER BY k.key;
END;
