{{ partitioned_table_config() }}

-- The minute grid of each pair: every minute from one bar to the next is present when the
-- gap is at most 60 missing minutes (forward-filled from the last close, is_filled = true);
-- after a longer gap (weekends, outages) nothing is filled and a new segment starts, so
-- rolling windows restart. segment_row counts minutes since the segment's first bar.
-- Only the pairs in scope are read: stg_m1_bars holds every pair, and a `--pairs` build that
-- read them all wrote other pairs' rows into its partitions (a duplicate key, issue 18).
with {{ rows_in_scope(
    'bars', ref('stg_m1_bars'), ['pair', 'ts_utc', 'open', 'high', 'low', 'close', 'volume'],
    halo_before=true, halo_after_minutes=62
) }},

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
    {{ minute_series_join(
        'b.ts_utc',
        "case
            when b.next_ts_utc - b.ts_utc <= " ~ interval_of(61, 'minute') ~ " then b.next_ts_utc - " ~ interval_of(1, 'minute') ~ "
            else b.ts_utc
        end",
        'm', 'ts_utc') }}
),

segmented as (
    select
        *,
        max(case when is_segment_start then ts_utc end) over (
            partition by pair order by ts_utc rows unbounded preceding
        ) as segment_start_utc
    from filled
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
