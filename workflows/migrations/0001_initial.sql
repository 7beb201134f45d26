-- leadrelay's PostgreSQL schema, version 1. Applied by `leadrelay db upgrade`, in one
-- transaction, into the first schema of the connection's search_path.

-- Which migrations ran (one row per file of workflows/migrations/).
CREATE TABLE schema_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- The routing state the ledger (workflows/ledger.py) keeps by key: meta:seq, pool:<id>,
-- count:<rep>, owner:email:<email>, owner:domain:<domain>, lead:<crm>:<id>. "C" collation:
-- keys compare byte by byte, as the ledger's range keys expect.
CREATE TABLE ledger_state (
    key text COLLATE "C" PRIMARY KEY,
    value json NOT NULL
);

-- The append-only assignment log: the record as the ledger wrote it (json keeps its text
-- exactly, escapes included) and the columns the log's filters use, each indexed.
CREATE TABLE assignment_log (
    id bigint PRIMARY KEY,
    decided_at timestamptz NOT NULL,
    crm text NOT NULL,
    object_type text NOT NULL,
    lead_id text NOT NULL,
    source text NOT NULL,
    rule text NOT NULL,
    outcome text NOT NULL,
    previous_owner text,
    new_owner text,
    record json NOT NULL
);
CREATE INDEX assignment_log_decided_at ON assignment_log (decided_at, id);
CREATE INDEX assignment_log_new_owner ON assignment_log (new_owner, id);
CREATE INDEX assignment_log_previous_owner ON assignment_log (previous_owner, id);
CREATE INDEX assignment_log_lead ON assignment_log (lead_id, crm, id);
CREATE INDEX assignment_log_crm ON assignment_log (crm, id);
CREATE INDEX assignment_log_rule ON assignment_log (rule COLLATE "C", id);
CREATE INDEX assignment_log_source ON assignment_log (source, id);
CREATE INDEX assignment_log_outcome ON assignment_log (outcome, id);
CREATE INDEX assignment_log_object_type ON assignment_log (object_type, id);

-- One row per idempotency key (and alias): the first decision made under it.
CREATE TABLE idempotency_keys (
    key text PRIMARY KEY,
    log_id bigint NOT NULL
);

-- Beside each log row: its CRM write-back status, its SLA state, its outcomes.
CREATE TABLE writebacks (
    log_id bigint PRIMARY KEY,
    state json NOT NULL
);
CREATE TABLE sla_states (
    log_id bigint PRIMARY KEY,
    state json NOT NULL
);
CREATE TABLE outcomes (
    log_id bigint PRIMARY KEY,
    times jsonb NOT NULL
);

-- The deadline index: one row per open SLA, keyed by the ledger's due:<UTC time>:<id> key.
CREATE TABLE sla_deadlines (
    due_key text COLLATE "C" PRIMARY KEY,
    log_id bigint NOT NULL
);

-- Small values every instance shares (the HubSpot API budget and its pause). NULL data: a row
-- made only to be locked (SELECT ... FOR UPDATE), never written.
CREATE TABLE shared_values (
    name text PRIMARY KEY,
    data bytea
);
