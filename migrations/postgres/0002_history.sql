-- Property history and lifecycle stage transitions (PostgreSQL). Rows are written by per-model
-- triggers generated from the Catalog (tracked and stage fields), in the writing transaction, so
-- concurrent updates of one record are recorded in the order their row locks were taken.
CREATE TABLE IF NOT EXISTS crm_history (
    org_id     TEXT NOT NULL,
    seq        BIGINT GENERATED ALWAYS AS IDENTITY,
    model      TEXT NOT NULL,
    record_id  UUID NOT NULL,
    field      TEXT NOT NULL,
    old_value  JSONB,
    new_value  JSONB,
    changed_at TIMESTAMPTZ NOT NULL,
    changed_by TEXT,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX IF NOT EXISTS ix_crm_history_record ON crm_history (org_id, model, record_id, field, seq);

CREATE TABLE IF NOT EXISTS crm_stage_transitions (
    org_id     TEXT NOT NULL,
    seq        BIGINT GENERATED ALWAYS AS IDENTITY,
    model      TEXT NOT NULL,
    record_id  UUID NOT NULL,
    field      TEXT NOT NULL,
    stage      TEXT NOT NULL,
    entered_at TIMESTAMPTZ NOT NULL,
    exited_at  TIMESTAMPTZ,
    entered_by TEXT,
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX IF NOT EXISTS ix_crm_stage_record ON crm_stage_transitions (org_id, model, record_id, field, seq);
CREATE INDEX IF NOT EXISTS ix_crm_stage_stage ON crm_stage_transitions (org_id, model, field, stage, entered_at);

-- The same two walls as model tables: row-level security keyed by the request's tenant.
ALTER TABLE crm_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_history FORCE ROW LEVEL SECURITY;
CREATE POLICY crm_tenant ON crm_history USING (org_id = current_setting('crm.org_id', true))
    WITH CHECK (org_id = current_setting('crm.org_id', true));
CREATE POLICY crm_tenant_read ON crm_history FOR SELECT
    USING (org_id = ANY (string_to_array(current_setting('crm.read_orgs', true), ',')));
ALTER TABLE crm_stage_transitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_stage_transitions FORCE ROW LEVEL SECURITY;
CREATE POLICY crm_tenant ON crm_stage_transitions USING (org_id = current_setting('crm.org_id', true))
    WITH CHECK (org_id = current_setting('crm.org_id', true));
CREATE POLICY crm_tenant_read ON crm_stage_transitions FOR SELECT
    USING (org_id = ANY (string_to_array(current_setting('crm.read_orgs', true), ',')));
