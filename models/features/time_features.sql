{{ partitioned_table_config() }}

-- Calendar encodings and trading sessions. Sessions use each centre's local clock (DST
-- included): Tokyo 09:00-17:59 Asia/Tokyo, London 08:00-16:59 Europe/London, New York
-- 08:00-16:59 America/New_York.
with {{ rows_in_scope('series', ref('int_m1_series'), ['pair', 'ts_utc']) }},

clocks as (
    select
        pair,
        ts_utc,
        {{ hour_in_zone('ts_utc', 'UTC') }} * 60 + {{ minute_in_zone('ts_utc', 'UTC') }}
            as minute_of_day,
        {{ iso_day_of_week('ts_utc', 'UTC') }} - 1 as day_of_week,
        {{ hour_in_zone('ts_utc', 'Asia/Tokyo') }} as tokyo_hour,
        {{ hour_in_zone('ts_utc', 'Europe/London') }} as london_hour,
        {{ hour_in_zone('ts_utc', 'America/New_York') }} as new_york_hour
    from series
),

final as (
    select
        pair,
        ts_utc,
        sin(2 * pi() * minute_of_day / 1440) as minute_of_day_sin,
        cos(2 * pi() * minute_of_day / 1440) as minute_of_day_cos,
        sin(2 * pi() * day_of_week / 7) as day_of_week_sin,
        cos(2 * pi() * day_of_week / 7) as day_of_week_cos,
        tokyo_hour between 9 and 17 as is_tokyo_session,
        london_hour between 8 and 16 as is_london_session,
        new_york_hour between 8 and 16 as is_new_york_session,
        london_hour between 8 and 16 and new_york_hour between 8 and 16 as is_london_new_york_overlap
    from clocks
)

select * from final
