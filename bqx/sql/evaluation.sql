-- `bqx evaluate` results: long format, one row per run, stage, model, pair, fold and metric.
create schema if not exists bqx;
create table if not exists bqx.evaluation_results (
    run_id text not null,
    stage text not null,
    model text not null,
    pair text not null,
    fold text not null,
    metric text not null,
    value double precision,
    ci_low double precision,
    ci_high double precision,
    created_at timestamptz not null default now(),
    primary key (run_id, stage, model, pair, fold, metric)
);
