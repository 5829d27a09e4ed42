-- The outbox's head per tenant: the last position a tenant appended, moved by the statements that
-- append (crm-orm's `sql::events::append`). A consumer finds the tenants with events it has not
-- processed by comparing heads with its positions (one row per tenant), then reads each of those
-- tenants' events by the (org_id, seq) index from its position.
CREATE TABLE IF NOT EXISTS crm_outbox_heads (
    org_id   TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
INSERT INTO crm_outbox_heads (org_id, last_seq)
    SELECT org_id, MAX(seq) FROM crm_outbox WHERE true GROUP BY org_id
    ON CONFLICT (org_id) DO NOTHING;
