-- Property history and lifecycle stage transitions (SQLite). Rows are written by per-model
-- triggers generated from the Catalog (tracked and stage fields), in the writing transaction.
CREATE TABLE IF NOT EXISTS crm_history (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     TEXT NOT NULL,
    model      TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    field      TEXT NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    changed_at TEXT NOT NULL,
    changed_by TEXT
);
CREATE INDEX IF NOT EXISTS ix_crm_history_record ON crm_history (org_id, model, record_id, field, seq);

CREATE TABLE IF NOT EXISTS crm_stage_transitions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id     TEXT NOT NULL,
    model      TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    field      TEXT NOT NULL,
    stage      TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    exited_at  TEXT,
    entered_by TEXT
);
CREATE INDEX IF NOT EXISTS ix_crm_stage_record ON crm_stage_transitions (org_id, model, record_id, field, seq);
CREATE INDEX IF NOT EXISTS ix_crm_stage_stage ON crm_stage_transitions (org_id, model, field, stage, entered_at);
