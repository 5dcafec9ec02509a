{{ partitioned_table_config() }}
{{ config(tail_lookback_minutes=target_horizon_minutes() + 1) }}
-- depends_on: {{ ref('regime_thresholds') }}

-- Targets at horizon 60 minutes, kept apart from every feature table (the feature matrix never
-- sees them): bqx_t60 = bqx_60 at t+60; vol_t60 = sample std of bqx_60 over the 60 minutes
-- ending at t+60 (t+1 … t+60); regime_t60 = the plan's classify_regime(bqx_t60, vol_t60) with
-- the pair's thresholds in regime_thresholds_fitted (fitted on the train period to the target
-- shares of seeds/regime_thresholds.csv). A row needs t+60 in the same segment.
{%- set h = target_horizon_minutes() %}
{%- set partition = 'pair, segment_start_utc' %}

with {{ horizon_series_cte([ts_in_scope('ts_utc', halo_after_minutes=h + 1), pair_in_scope('pair')]) }},

{{ horizon_target_ctes(partition) }},

final as (
    select
        a.pair,
        a.ts_utc,
        a.bqx_t60,
        a.vol_t60,
        {{ classify_regime('a.bqx_t60', 'a.vol_t60', 'thresholds') }} as regime_t60,
        {{ classify_regime('a.bqx_t60', 'a.vol_t60', 'thresholds', as_code=true) }} as regime_t60_code
    from ahead as a
    left join {{ ref('regime_thresholds_fitted') }} as thresholds on a.pair = thresholds.pair
    where
        a.target_ts_utc = a.ts_utc + {{ interval_of(h, 'minute') }}
        and a.vol_t60 is not null
        and {{ ts_in_scope('a.ts_utc') }}
)

select * from final
