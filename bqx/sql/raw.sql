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
--
-- The same trigger keeps a durable log of arrivals (raw.bar_arrivals, one row per statement):
-- a notification reaches only a listener connected at commit, the log also tells a serve
-- loop that was down what came meanwhile, and the dashboard how old the feed is and how long
-- a minute took from its bars' arrival to its stored predictions. arrived_at is
-- clock_timestamp() at the end of the statement, the closest a trigger gets to its commit.
create table if not exists raw.bar_arrivals (
    arrival_id bigserial primary key,
    arrived_at timestamptz not null default clock_timestamp(),
    oldest_minute timestamptz not null,
    newest_minute timestamptz not null,
    bars integer not null
);
create index if not exists bar_arrivals_newest on raw.bar_arrivals (newest_minute);

create or replace function raw.notify_new_bars() returns trigger
language plpgsql as $$
declare
    oldest timestamptz;
    newest timestamptz;
    written integer;
begin
    select min(ts_utc), max(ts_utc), count(*) into oldest, newest, written from new_bars;
    if newest is not null then
        insert into raw.bar_arrivals (oldest_minute, newest_minute, bars)
        values (oldest, newest, written);
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
