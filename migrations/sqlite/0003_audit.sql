-- The audit log (SQLite): who deleted, restored or destroyed what, and (later) who changed metadata.
CREATE TABLE IF NOT EXISTS crm_audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id    TEXT NOT NULL,
    at        TEXT NOT NULL,
    actor     TEXT,
    action    TEXT NOT NULL,
    model     TEXT,
    record_id TEXT,
    detail    TEXT
);
CREATE INDEX IF NOT EXISTS ix_crm_audit_org ON crm_audit (org_id, seq);
