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
-- exactly, escapes included), and the columns of its projection (workflows/log_projection.py,
-- the same columns the embedded store's console queries read), each filter indexed. Times are
-- fixed-width UTC text, which sorts like the time itself; the SLA, write-back and outcome
-- columns follow the rows kept beside the record, in the same commit.
CREATE TABLE assignment_log (
    id bigint PRIMARY KEY,
    decided_at text COLLATE "C" NOT NULL,
    crm text NOT NULL,
    object_type text NOT NULL,
    lead_id text NOT NULL,
    source text NOT NULL,
    rule text COLLATE "C" NOT NULL,
    outcome text NOT NULL,
    previous_owner text,
    new_owner text,
    sla_status text,
    sla_outcome text,
    sla_deadline text COLLATE "C",
    ttft_s double precision,
    rotations integer,
    writeback_status text,
    contacted_at text COLLATE "C",
    converted_at text COLLATE "C",
    disqualified_at text COLLATE "C",
    record json NOT NULL
);
CREATE INDEX assignment_log_decided_at ON assignment_log (decided_at, id);
CREATE INDEX assignment_log_new_owner ON assignment_log (new_owner, id);
CREATE INDEX assignment_log_previous_owner ON assignment_log (previous_owner, id);
CREATE INDEX assignment_log_lead ON assignment_log (lead_id, id);
CREATE INDEX assignment_log_crm ON assignment_log (crm, id);
CREATE INDEX assignment_log_rule ON assignment_log (rule, id);
CREATE INDEX assignment_log_source ON assignment_log (source, id);
CREATE INDEX assignment_log_outcome ON assignment_log (outcome, id);
CREATE INDEX assignment_log_object_type ON assignment_log (object_type, id);

-- One row per idempotency key (and alias): the first decision made under it.
CREATE TABLE idempotency_keys (
    key text PRIMARY KEY,
    log_id bigint NOT NULL
);

-- Beside each log row: its CRM write-back status, its SLA state, its outcome times.
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
    times json NOT NULL
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

-- The outbox (HubSpot's batch mode): one row per decision that left work for a background
-- flusher, keyed by its log id, holding the ledger's OutboxItem (payload, attempts, claim);
-- deleted once the work is done.
CREATE TABLE outbox (
    log_id bigint PRIMARY KEY,
    item json NOT NULL
);
