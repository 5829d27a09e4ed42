-- The outbox's head per tenant: the last position a tenant appended, moved by the statement that
-- appends (crm-orm's `sql::events::append`). A consumer finds the tenants with events it has not
-- processed by comparing heads with its positions (one row per tenant), then reads each of those
-- tenants' events by the (org_id, seq) index from its position: no read ever touches processed
-- events, however many the outbox keeps.
SELECT set_config('crm.platform', 'on', true);

CREATE TABLE IF NOT EXISTS crm_outbox_heads (
    org_id   TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
INSERT INTO crm_outbox_heads (org_id, last_seq)
    SELECT org_id, MAX(seq) FROM crm_outbox GROUP BY org_id
    ON CONFLICT (org_id) DO NOTHING;

ALTER TABLE crm_outbox_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE crm_outbox_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY crm_tenant ON crm_outbox_heads USING (org_id = (SELECT current_setting('crm.org_id', true)))
    WITH CHECK (org_id = (SELECT current_setting('crm.org_id', true)));
CREATE POLICY crm_platform ON crm_outbox_heads USING (current_setting('crm.platform', true) = 'on')
    WITH CHECK (current_setting('crm.platform', true) = 'on');
