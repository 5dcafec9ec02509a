-- Every grid row belongs to the segment of the row before it, unless it starts a new one;
-- and segment_row counts the minutes since that start. A failure means a halo was too short
-- to find a segment's start (see macro halo_days) or the grid has a hole inside a segment.
with ordered as (
    select
        pair,
        ts_utc,
        is_segment_start,
        segment_start_utc,
        segment_row,
        lag(ts_utc) over (partition by pair order by ts_utc) as previous_ts_utc,
        lag(segment_start_utc) over (partition by pair order by ts_utc) as previous_segment_start_utc
    from {{ ref('int_m1_grid_filled') }}
)

select *
from ordered
where
    segment_row <> {{ minutes_between('segment_start_utc', 'ts_utc') }}
    or (is_segment_start and segment_start_utc <> ts_utc)
    or (
        not is_segment_start and previous_ts_utc is not null
        and (segment_start_utc <> previous_segment_start_utc or ts_utc - previous_ts_utc <> {{ interval_of(1, 'minute') }})
    )
