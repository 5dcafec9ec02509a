{{ partitioned_table_config() }}

-- The minute grid of each pair: every minute from one bar to the next is present when the
-- gap is at most 60 missing minutes (forward-filled from the last close, is_filled = true);
-- after a longer gap (weekends, outages) nothing is filled and a new segment starts, so
-- rolling windows restart. segment_row counts minutes since the segment's first bar.
-- Only the pairs in scope are read: stg_m1_bars holds every pair, and a `--pairs` build that
-- read them all wrote other pairs' rows into its partitions (a duplicate key, issue 18).
-- A tail build reads the bars of the last 62 minutes before its start (the bars whose fill or
-- gap reaches into the tail) and carries each pair's segment start from the grid's own row
-- the minute before the tail, instead of finding it again in days of bars: a segment can
-- run from Sunday night to Friday, and reading it was most of a tail build's grid.
-- The trailing edge: a pair's newest bar is filled up to the newest minute of any pair (the
-- panel's newest minute) when that is at most 60 minutes later, since its close is the price
-- known then. Without it a pair missing one minute's bar (28 generated pairs: AUDCAD at
-- 16:05) had no row at that minute until its next bar came, and neither had its 12 sisters'
-- sister_correlation (a full joint window with every sister), so the live loop predicted 15
-- of 28 pairs that minute. The fill is the one a next bar within 61 minutes gives anyway;
-- when none comes (a pair silent for over an hour, a weekend) the newest minute moves more
-- than 60 minutes past the bar and the rows go again, as in the batch build of those bars
-- (the tail build then starts after the bar: bqx/tail_build.py).
{{ config(tail_halo_minutes=62) }}
{%- set tail = tail_from() is not none %}
with {{ rows_in_scope(
    'bars', ref('stg_m1_bars'), ['pair', 'ts_utc', 'open', 'high', 'low', 'close', 'volume'],
    halo_before=true, halo_after_minutes=62
) }},

panel as (
    -- the newest minute of any pair: trailing bars are filled up to it (see above)
    select {{ newest_minute(ref('stg_m1_bars'), ref('pairs')) }} as newest_ts_utc
),

neighbours as (
    select
        *,
        lag(ts_utc) over (partition by pair order by ts_utc) as previous_ts_utc,
        lead(ts_utc) over (partition by pair order by ts_utc) as next_ts_utc
    from bars
),

filled as (
    select
        b.pair,
        m.ts_utc,
        m.ts_utc <> b.ts_utc as is_filled,
        m.ts_utc = b.ts_utc
        and (b.previous_ts_utc is null or b.ts_utc - b.previous_ts_utc > {{ interval_of(61, 'minute') }})
            as is_segment_start,
        case when m.ts_utc = b.ts_utc then b.open else b.close end as open,
        case when m.ts_utc = b.ts_utc then b.high else b.close end as high,
        case when m.ts_utc = b.ts_utc then b.low else b.close end as low,
        b.close,
        case when m.ts_utc = b.ts_utc then b.volume else 0 end as volume
    from neighbours as b
    cross join panel as p
    {{ minute_series_join(
        'b.ts_utc',
        "case
            when b.next_ts_utc - b.ts_utc <= " ~ interval_of(61, 'minute') ~ " then b.next_ts_utc - " ~ interval_of(1, 'minute') ~ "
            when b.next_ts_utc is null and p.newest_ts_utc - b.ts_utc <= " ~ interval_of(60, 'minute') ~ " then p.newest_ts_utc
            else b.ts_utc
        end",
        'm', 'ts_utc') }}
),

{%- if tail %}

carried as (
    -- the segment each pair is in the minute before the tail (none: the tail starts a new one)
    select
        pair,
        segment_start_utc
    from {{ this }}
    where ts_utc = {{ tail_start() }} - {{ interval_of(1, 'minute') }} and {{ pair_in_scope('pair') }}
),
{%- endif %}

segmented as (
    select
        f.*,
        {%- if tail %}
        -- a bar in the halo has no previous bar read: only starts in the tail count
        coalesce(max(case when f.is_segment_start and f.ts_utc >= {{ tail_start() }} then f.ts_utc end) over (
            partition by f.pair order by f.ts_utc rows unbounded preceding
        ), c.segment_start_utc) as segment_start_utc
    from filled as f
    left join carried as c on f.pair = c.pair
        {%- else %}
        max(case when f.is_segment_start then f.ts_utc end) over (
            partition by f.pair order by f.ts_utc rows unbounded preceding
        ) as segment_start_utc
    from filled as f
        {%- endif %}
),

final as (
    select
        pair,
        ts_utc,
        open,
        high,
        low,
        close,
        volume,
        is_filled,
        is_segment_start,
        segment_start_utc,
        {{ sql_cast('(' ~ minutes_between('segment_start_utc', 'ts_utc') ~ ')', 'integer') }} as segment_row
    from segmented
    where
        segment_start_utc is not null
        and {{ ts_in_scope('ts_utc') }}
)

select * from final
