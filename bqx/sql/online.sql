-- Stage 2.19, the online learner's tables (created idempotently by bqx_online.storage_postgres).
-- The dashboard reads these; columns may be added, never renamed or removed.
create schema if not exists bqx;

-- One row per (pair, minute, horizon): what the ensemble predicted from the features at ts_utc
-- for bqx_60 at ts_utc + horizon_minutes, stored before anything is learned. A re-run of the
-- same minute leaves the row as it is (insert ... on conflict do nothing).
create table if not exists bqx.online_predictions (
    pair text not null,
    ts_utc timestamptz not null,
    horizon_minutes integer not null,
    prediction double precision not null,
    member_predictions jsonb not null,
    weights jsonb not null,
    static_prediction double precision,
    realized double precision,
    learned_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (pair, ts_utc, horizon_minutes)
);

-- One row per drift alarm: ts_utc is the minute the evidence became known (the realized
-- minute of the error that tripped the detector), so a replayed minute cannot add a duplicate.
create table if not exists bqx.drift_events (
    event_id bigserial primary key,
    pair text not null,
    ts_utc timestamptz not null,
    detector text not null,
    evidence jsonb not null,
    created_at timestamptz not null default now(),
    unique (pair, ts_utc, detector)
);
-- The detectors: set here rather than in the create, so a database made before
-- 'skill_cusum' (two CUSUMs on skill against the zero member, issue 16) gets the wider list
-- too; 'page_hinkley' is the previous skill monitor's, kept for the rows it wrote.
alter table bqx.drift_events drop constraint if exists drift_events_detector_check;
alter table bqx.drift_events add constraint drift_events_detector_check
check (detector in ('adwin', 'mae_ratio', 'page_hinkley', 'skill_cusum'));

-- The ensemble's weights after each learning step: Hedge, exp(-rate × discounted vol-unit loss).
create table if not exists bqx.ensemble_weights (
    pair text not null,
    ts_utc timestamptz not null,
    member text not null,
    weight double precision not null,
    recent_mae double precision,
    primary key (pair, ts_utc, member)
);

-- Checkpoint versions (files under $BQX_HOME/artifacts/online/<PAIR>/) and the pointer to the
-- current one: a version is written first, then the pointer moves in one transaction.
-- learned_through: the newest prediction minute whose outcome the checkpoint has learned.
create table if not exists bqx.online_checkpoints (
    pair text not null,
    version integer not null,
    path text not null,
    ts_utc timestamptz not null,
    learned_through timestamptz,
    n_learned bigint not null default 0,
    created_at timestamptz not null default now(),
    primary key (pair, version)
);
-- digest: HMAC-SHA256 of the file's bytes under the learner's key, checked before unpickling
-- (lambda/bqx_online/checkpoint_key.py); added to tables made before it existed
alter table bqx.online_checkpoints add column if not exists digest text;

create table if not exists bqx.online_checkpoint_pointer (
    pair text primary key,
    version integer not null,
    updated_at timestamptz not null default now()
);

-- One row per handler step (a minute stepped by serve, replay or the Lambda handler): how long
-- it took and its parts, for the dashboard's live latency panel. created_at is the clock at
-- the end of the step (clock_timestamp(), not the transaction's start).
create table if not exists bqx.online_steps (
    step_id bigserial primary key,
    ts_utc timestamptz not null,
    pairs integer not null,
    seconds double precision not null,
    predict_seconds double precision,
    learn_seconds double precision,
    checkpoint_seconds double precision,
    created_at timestamptz not null default clock_timestamp()
);
create index if not exists online_steps_ts on bqx.online_steps (ts_utc);
