-- The live loop's log (bqx/tail_build.py; `bqx online serve`), created idempotently.
create schema if not exists bqx;

-- One row per tail build: inserted (finished_at null) before dbt runs, finished when every
-- model succeeded. dbt commits model by model, so after a crash or a kill in the middle the
-- grid alone does not tell what the other tables hold: an unfinished row makes the next tail
-- build start no later than its tail_from. late: it started before the built tail because
-- bars arrived for minutes already built.
create table if not exists bqx.live_tail_builds (
    tail_id bigserial primary key,
    tail_from timestamptz not null,
    newest_bar timestamptz,
    late boolean not null default false,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    seconds double precision
);
create index if not exists live_tail_builds_unfinished
    on bqx.live_tail_builds (tail_from) where finished_at is null;
