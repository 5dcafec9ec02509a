-- Raw layer: bars exactly as ingested, and every line that was refused, with why.
create schema if not exists raw;

create table if not exists raw.m1_bars (
    pair text not null,
    ts_utc timestamptz not null,
    open double precision not null,
    high double precision not null,
    low double precision not null,
    close double precision not null,
    volume double precision not null default 0,
    source text not null,
    primary key (pair, ts_utc)
) partition by list (pair);

create table if not exists raw.m1_bars_rejected (
    rejected_id bigserial primary key,
    pair text,
    source text not null,
    source_sha256 text not null,
    line_no integer not null,
    raw_line text not null,
    reason text not null,
    rejected_at timestamptz not null default now(),
    -- the same line of the same file content is quarantined once, however often it is ingested
    unique (source_sha256, line_no)
);

create table if not exists raw.ingest_log (
    ingest_id bigserial primary key,
    source text not null,
    source_sha256 text not null,
    file_format text not null,
    rows_read integer not null,
    rows_loaded integer not null,
    rows_duplicate integer not null,
    rows_rejected integer not null,
    ingested_at timestamptz not null default now()
);

-- Wake on data: each statement that inserts (or updates) bars notifies channel `bqx_bars`
-- with the minutes it wrote (ISO text, UTC), once per statement, not per row: the newest
-- minute alone ('2024-01-29T10:15:00Z') when all its rows are of one minute, else
-- 'oldest/newest' (an ISO 8601 interval). A listener (`bqx online serve`) wakes on it instead
-- of polling, and an oldest minute it has already built tells it a late bar came (it then
-- recomputes from there). Notifications are delivered at commit, so a listener never sees a
-- minute before its bars are visible. Statement-level with a transition table: one notify
-- per statement however many pairs it carries.
create or replace function raw.notify_new_bars() returns trigger
language plpgsql as $$
declare
    oldest timestamptz;
    newest timestamptz;
begin
    select min(ts_utc), max(ts_utc) into oldest, newest from new_bars;
    if newest is not null then
        perform pg_notify('bqx_bars', case when oldest < newest then
            to_char(oldest at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '/' else ''
        end || to_char(newest at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
    end if;
    return null;
end;
$$;
-- created once: `create or replace trigger` would lock raw.m1_bars on every ingest. A
-- correction by `update` notifies too (a trigger with a transition table has one event).
do $$
begin
    if not exists (
        select 1 from pg_trigger
        where tgname = 'm1_bars_notify' and tgrelid = 'raw.m1_bars'::regclass
    ) then
        create trigger m1_bars_notify
            after insert on raw.m1_bars
            referencing new table as new_bars
            for each statement execute function raw.notify_new_bars();
    end if;
    if not exists (
        select 1 from pg_trigger
        where tgname = 'm1_bars_notify_update' and tgrelid = 'raw.m1_bars'::regclass
    ) then
        create trigger m1_bars_notify_update
            after update on raw.m1_bars
            referencing new table as new_bars
            for each statement execute function raw.notify_new_bars();
    end if;
end;
$$;
