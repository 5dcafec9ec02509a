-- `bqx evaluate` results: long format, one row per run, target, stage, model, pair, fold and
-- metric. Tables written before the scoreboard scored bqx_t60 only: they get the target column
-- (their rows are bqx_t60's) and the wider primary key.
create schema if not exists bqx;
create table if not exists bqx.evaluation_results (
    run_id text not null,
    target text not null default 'bqx_t60',
    stage text not null,
    model text not null,
    pair text not null,
    fold text not null,
    metric text not null,
    value double precision,
    ci_low double precision,
    ci_high double precision,
    created_at timestamptz not null default now(),
    primary key (run_id, target, stage, model, pair, fold, metric)
);
alter table bqx.evaluation_results add column if not exists target text not null default 'bqx_t60';
do $$
begin
    if not exists (
        select 1 from information_schema.key_column_usage
        where table_schema = 'bqx' and table_name = 'evaluation_results'
            and constraint_name = 'evaluation_results_pkey' and column_name = 'target'
    ) then
        alter table bqx.evaluation_results drop constraint if exists evaluation_results_pkey;
        alter table bqx.evaluation_results add constraint evaluation_results_pkey
        primary key (run_id, target, stage, model, pair, fold, metric);
    end if;
end
$$;
