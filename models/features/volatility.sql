{{ partitioned_table_config() }}

-- vol_W: sample standard deviation of 1-minute log returns × 100 over the last W minutes.
-- hl_vol_W: Parkinson's high-low range estimator over the same window, also in percent.
-- float8 running sums minus their lag keep the cost O(n) for every W.
{%- set partition = 'pair, segment_start_utc' %}

with {{ segment_series(['coalesce(log_return_pct, 0) as log_return_pct', 'log_range_pct']) }},

{{ running_sums_cte([
    ('sum_r', 'log_return_pct'),
    ('sum_r2', 'log_return_pct * log_return_pct'),
    ('sum_hl2', 'log_range_pct * log_range_pct')
], partition) }},

windows as (
    select
        pair,
        ts_utc,
        segment_row,
        {%- for w in vol_windows() %}
        {{ window_from_running('sum_r', w, partition) }} as sum_r_{{ w }},
        {{ window_from_running('sum_r2', w, partition) }} as sum_r2_{{ w }},
        {{ window_from_running('sum_hl2', w, partition) }} as sum_hl2_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    from running
),

final as (
    select
        pair,
        ts_utc,
        {%- for w in vol_windows() %}
        {{ sample_std_from_sums('sum_r_' ~ w, 'sum_r2_' ~ w, w) }} as vol_{{ w }},
        sqrt(sum_hl2_{{ w }} / (4 * ln(2.0) * {{ w }})) as hl_vol_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    from windows
    where segment_row >= {{ vol_windows() | max }} and {{ ts_in_scope('ts_utc') }}
)

select * from final
