-- The audit log (PostgreSQL): who deleted, restored or destroyed what, and (later) who changed
-- metadata. Written in the transaction of the change it records.
CREATE TABLE IF NOT EXISTS crm_audit (
    org_id    TEXT NOT NULL,
    seq       BIGINT GENERATED ALWAYS AS IDENTITY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT,
    action    TEXT NOT NULL,
    model     TEXT,
    record_id UUID,
    detail    JSONB,
    PRIMARY KEY (org_id, seq)
);
ALTER TABLE crm_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_audit FORCE ROW LEVEL SECURITY;
CREATE POLICY crm_tenant ON crm_audit USING (org_id = current_setting('crm.org_id', true))
    WITH CHECK (org_id = current_setting('crm.org_id', true));
