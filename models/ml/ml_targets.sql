{{ partitioned_table_config() }}
{{ config(tail_lookback_minutes=target_horizon_minutes() + 1) }}
-- depends_on: {{ ref('regime_thresholds') }}

-- Targets at horizon 60 minutes, kept apart from every feature table (the feature matrix never
-- sees them): bqx_t60 = bqx_60 at t+60; vol_t60 = sample std of bqx_60 over the 60 minutes
-- ending at t+60 (t+1 … t+60); regime_t60 = the plan's classify_regime(bqx_t60, vol_t60) with
-- the thresholds of seeds/regime_thresholds.csv. A row needs t+60 in the same segment.
{%- set h = target_horizon_minutes() %}
{%- set partition = 'pair, segment_start_utc' %}

with series as (
    select
        pair,
        ts_utc,
        segment_start_utc,
        bqx_60
    from {{ ref('int_m1_series') }}
    where
        {{ ts_in_scope('ts_utc', halo_after_minutes=h + 1) }}
        and {{ pair_in_scope('pair') }}
        and bqx_60 is not null
),

{{ running_sums_cte([('sum_bqx', 'bqx_60'), ('sum_bqx2', 'bqx_60 * bqx_60')], partition, row_count='bqx_rows') }},

trailing_std as (
    -- std of bqx_60 over the 60 rows ending at each minute (running sums: O(n))
    select
        pair,
        ts_utc,
        segment_start_utc,
        bqx_60,
        case when bqx_rows >= {{ h }} then
            {{ sample_std_from_sums(
                window_from_running('sum_bqx', h, partition),
                window_from_running('sum_bqx2', h, partition),
                h) }}
        end as bqx_std_60
    from running
),

ahead as (
    select
        pair,
        ts_utc,
        lead(ts_utc, {{ h }}) over (partition by {{ partition }} order by ts_utc) as target_ts_utc,
        lead(bqx_60, {{ h }}) over (partition by {{ partition }} order by ts_utc) as bqx_t60,
        lead(bqx_std_60, {{ h }}) over (partition by {{ partition }} order by ts_utc) as vol_t60
    from trailing_std
),

final as (
    select
        pair,
        ts_utc,
        bqx_t60,
        vol_t60,
        {{ classify_regime('bqx_t60', 'vol_t60') }} as regime_t60,
        {{ classify_regime('bqx_t60', 'vol_t60', as_code=true) }} as regime_t60_code
    from ahead
    where
        target_ts_utc = ts_utc + {{ interval_of(h, 'minute') }}
        and vol_t60 is not null
        and {{ ts_in_scope('ts_utc') }}
)

select * from final
