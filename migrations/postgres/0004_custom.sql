-- Tenant-defined metadata (PostgreSQL): custom fields and custom objects, stored per tenant and
-- versioned, so every server instance can tell a tenant's schema changed without a restart.
ALTER TABLE crm_tenants ADD COLUMN IF NOT EXISTS metadata_version BIGINT NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS crm_metadata (
    org_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,          -- 'field' or 'object'
    model      TEXT NOT NULL,          -- the model a field belongs to; the object's own name
    name       TEXT NOT NULL,          -- the field's name; '' for an object
    definition JSONB NOT NULL,         -- the FieldDef / ModelDef JSON form
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    position   BIGINT NOT NULL,        -- declaration order within the tenant
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (org_id, kind, model, name)
);
ALTER TABLE crm_metadata ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_metadata FORCE ROW LEVEL SECURITY;
CREATE POLICY crm_tenant ON crm_metadata USING (org_id = current_setting('crm.org_id', true))
    WITH CHECK (org_id = current_setting('crm.org_id', true));

-- The records of every tenant's custom objects: one shared table, never per-tenant DDL. The
-- values are the JSON object `custom`, keyed by field name, like custom fields on model tables.
CREATE TABLE IF NOT EXISTS crm_records (
    org_id     TEXT NOT NULL,
    id         UUID NOT NULL,
    object     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by TEXT,
    updated_by TEXT,
    version    BIGINT NOT NULL DEFAULT 1,
    deleted_at TIMESTAMPTZ,
    custom     JSONB,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX IF NOT EXISTS ix_crm_records_object ON crm_records (org_id, object, created_at);
ALTER TABLE crm_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_records FORCE ROW LEVEL SECURITY;
CREATE POLICY crm_tenant ON crm_records USING (org_id = current_setting('crm.org_id', true))
    WITH CHECK (org_id = current_setting('crm.org_id', true));
CREATE POLICY crm_tenant_read ON crm_records FOR SELECT
    USING (org_id = ANY (string_to_array(current_setting('crm.read_orgs', true), ',')));

-- Property history of custom values: one row per key of `custom` whose value changed, written in
-- the transaction of the insert or update. The model is the trigger's argument (model tables) or
-- the row's `object` (custom object records).
CREATE OR REPLACE FUNCTION crm_track_custom_values(m TEXT, org TEXT, rid UUID, o JSONB, n JSONB, at TIMESTAMPTZ, actor TEXT)
RETURNS void LANGUAGE sql AS $crm$
    INSERT INTO crm_history (org_id, model, record_id, field, old_value, new_value, changed_at, changed_by)
    SELECT org, m, rid, k, NULLIF(o -> k, 'null'::jsonb), NULLIF(n -> k, 'null'::jsonb), at, actor
    FROM (SELECT jsonb_object_keys(COALESCE(o, '{}'::jsonb)) UNION SELECT jsonb_object_keys(COALESCE(n, '{}'::jsonb))) AS x(k)
    WHERE COALESCE(o -> k, 'null'::jsonb) IS DISTINCT FROM COALESCE(n -> k, 'null'::jsonb)
    ORDER BY k
$crm$;

CREATE OR REPLACE FUNCTION crm_track_custom() RETURNS trigger LANGUAGE plpgsql AS $crm$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM crm_track_custom_values(TG_ARGV[0], NEW.org_id, NEW.id, NULL, NEW.custom, NEW.created_at, NEW.created_by);
    ELSE
        PERFORM crm_track_custom_values(TG_ARGV[0], NEW.org_id, NEW.id, OLD.custom, NEW.custom, NEW.updated_at, NEW.updated_by);
    END IF;
    RETURN NULL;
END $crm$;

CREATE OR REPLACE FUNCTION crm_track_record() RETURNS trigger LANGUAGE plpgsql AS $crm$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM crm_track_custom_values(NEW.object, NEW.org_id, NEW.id, NULL, NEW.custom, NEW.created_at, NEW.created_by);
    ELSE
        PERFORM crm_track_custom_values(NEW.object, NEW.org_id, NEW.id, OLD.custom, NEW.custom, NEW.updated_at, NEW.updated_by);
    END IF;
    RETURN NULL;
END $crm$;

CREATE TRIGGER crm_custom_ins AFTER INSERT ON crm_records FOR EACH ROW
    WHEN (NEW.custom IS NOT NULL) EXECUTE FUNCTION crm_track_record();
CREATE TRIGGER crm_custom_upd AFTER UPDATE ON crm_records FOR EACH ROW
    WHEN (NEW.custom IS DISTINCT FROM OLD.custom) EXECUTE FUNCTION crm_track_record();
