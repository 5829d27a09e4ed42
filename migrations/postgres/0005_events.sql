-- Events (PostgreSQL): the transactional outbox, the consumers' durable positions and the
-- webhook delivery queue. System tables: read only by the engine's workers (across tenants, so
-- without row-level security), never by a request directly; requests reach deliveries only
-- through engine functions that filter by the request's tenant.
CREATE TABLE IF NOT EXISTS crm_outbox (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     TEXT NOT NULL,
    event_id   UUID NOT NULL,
    type       TEXT NOT NULL,
    model      TEXT NOT NULL,
    record_id  UUID NOT NULL,
    actor      TEXT,
    at         TIMESTAMPTZ NOT NULL,
    payload    JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_crm_outbox_org ON crm_outbox (org_id, seq);

CREATE TABLE IF NOT EXISTS crm_event_cursors (
    consumer   TEXT NOT NULL,
    org_id     TEXT NOT NULL,
    last_seq   BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, org_id)
);

CREATE TABLE IF NOT EXISTS crm_deliveries (
    id            UUID PRIMARY KEY,
    org_id        TEXT NOT NULL,
    webhook_id    UUID NOT NULL,
    event_seq     BIGINT NOT NULL,
    event_type    TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       TIMESTAMPTZ NOT NULL,
    last_status   INTEGER,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    delivered_at  TIMESTAMPTZ,
    UNIQUE (webhook_id, event_seq)
);
CREATE INDEX IF NOT EXISTS ix_crm_deliveries_due ON crm_deliveries (status, next_at);
CREATE INDEX IF NOT EXISTS ix_crm_deliveries_org ON crm_deliveries (org_id, webhook_id, created_at);
