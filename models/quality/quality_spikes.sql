{#- outside execution (dbt parse, sqlfluff) any window renders the same SQL shape -#}
{%- set window = var('spike_window_bars') | int if execute else 60 -%}

-- Spikes: a bar far outside its pair's recent range that the next bar takes back, the shape
-- of a bad tick (a news jump that stays is a new level, not a spike). Recent = the previous
-- var('spike_window_bars') bars: their highest high, lowest low and mean range (high − low,
-- at least one pip). A bar is a spike when it reaches beyond that high or low by more than
-- var('spike_factor') mean ranges and the next close is back within half that excursion of
-- the previous close. Extremes by sparse table, the mean range from a running sum: O(n).
with bars as (
    select
        b.pair,
        b.ts_utc,
        b.open,
        b.high,
        b.low,
        b.close,
        greatest(b.high - b.low, power(10, 1 - p.price_decimals)) as bar_range,
        {{ running_sum('greatest(b.high - b.low, power(10, 1 - p.price_decimals))', 'b.pair', 'b.ts_utc') }}
        as range_running
    from {{ ref('stg_m1_bars') }} as b
    inner join {{ ref('pairs') }} as p on b.pair = p.pair
),

{{ sparse_table_ctes('bars', {'high': 'greatest', 'low': 'least'}, window, 'pair') }},

windowed as (
    select
        *,
        {{ sparse_table_window('high', window, 'greatest', 'pair') }} as high_to_now,
        {{ sparse_table_window('low', window, 'least', 'pair') }} as low_to_now
    from {{ sparse_table_last_cte(window) }}
),

recent as (
    select
        *,
        lag(high_to_now) over (partition by pair order by ts_utc) as recent_high,
        lag(low_to_now) over (partition by pair order by ts_utc) as recent_low,
        {{ window_from_running('range_running', window, 'pair', offset=1) }} / {{ window }} as recent_mean_range,
        lag(close) over (partition by pair order by ts_utc) as previous_close,
        lead(close) over (partition by pair order by ts_utc) as next_close,
        row_number() over (partition by pair order by ts_utc) as bar_index
    from windowed
),

measured as (
    select
        *,
        greatest(high - recent_high, recent_low - low, 0) / recent_mean_range as excursion_ranges
    from recent
    where bar_index > {{ window }}
)

select
    pair,
    ts_utc,
    open,
    high,
    low,
    close,
    recent_high,
    recent_low,
    recent_mean_range,
    excursion_ranges,
    next_close
from measured
where
    excursion_ranges > {{ var('spike_factor') }}
    and abs(next_close - previous_close) < 0.5 * excursion_ranges * recent_mean_range
