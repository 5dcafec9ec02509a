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
