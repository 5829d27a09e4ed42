-- Events (SQLite): the transactional outbox, the consumers' durable positions and the webhook
-- delivery queue. System tables: read only by the engine's workers, never by a request directly.
CREATE TABLE IF NOT EXISTS crm_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    type       TEXT NOT NULL,
    model      TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    actor      TEXT,
    at         TEXT NOT NULL,
    payload    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_crm_outbox_org ON crm_outbox (org_id, seq);

CREATE TABLE IF NOT EXISTS crm_event_cursors (
    consumer   TEXT NOT NULL,
    org_id     TEXT NOT NULL,
    last_seq   INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (consumer, org_id)
);

CREATE TABLE IF NOT EXISTS crm_deliveries (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL,
    webhook_id    TEXT NOT NULL,
    event_seq     INTEGER NOT NULL,
    event_type    TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       TEXT NOT NULL,
    last_status   INTEGER,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    delivered_at  TEXT,
    UNIQUE (webhook_id, event_seq)
);
CREATE INDEX IF NOT EXISTS ix_crm_deliveries_due ON crm_deliveries (status, next_at);
CREATE INDEX IF NOT EXISTS ix_crm_deliveries_org ON crm_deliveries (org_id, webhook_id, created_at);
