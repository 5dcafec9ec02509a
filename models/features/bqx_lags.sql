{{ partitioned_table_config() }}
-- Reads bqx_60 from int_m1_series and declares no edge to bqx_values, where bqx is defined:
-- such an edge would start this model a graph level later (see sister_correlation, Scheduling).

-- The pair's own bqx (= bqx_60) k minutes ago, within the segment.
with {{ segment_series(['bqx_60']) }},

lagged as (
    select
        pair,
        ts_utc,
        segment_row,
        {%- for k in bqx_lags() %}
        lag(bqx_60, {{ k }})
            over (partition by pair, segment_start_utc order by ts_utc)
            as bqx_lag_{{ k }}{{ "," if not loop.last }}
        {%- endfor %}
    from series
),

{{ final_cte(
    'lagged',
    numbered('bqx_lag_', bqx_lags()),
    where='segment_row >= ' ~ (60 + bqx_lags() | max) ~ ' and ' ~ ts_in_scope('ts_utc')
) }}

select * from final
