{#- The 60-minute targets, shared word for word by ml_targets and regime_thresholds_fitted so
    the thresholds are fitted on exactly the values they classify. -#}

{% macro horizon_series_cte(conditions) -%}
    {#- CTE `series`: pair, ts_utc, segment_start_utc and bqx_60 of int_m1_series where
        every SQL condition of `conditions` holds and bqx_60 is known -#}
series as (
    select
        pair,
        ts_utc,
        segment_start_utc,
        bqx_60
    from {{ ref('int_m1_series') }}
    where
        {%- for condition in conditions %}
        {{ condition }} and
        {%- endfor %}
        bqx_60 is not null
)
{%- endmacro %}

{% macro horizon_target_ctes(partition_by) -%}
    {#- CTEs `running`, `trailing_std` and `ahead` over CTE `series` (pair, ts_utc,
        segment_start_utc, bqx_60): `ahead` holds pair, ts_utc, target_ts_utc, bqx_t60 and
        vol_t60 (std of bqx_60 over the horizon's minutes, from running sums: O(n)) -#}
    {%- set h = target_horizon_minutes() -%}
{{ running_sums_cte([('sum_bqx', 'bqx_60'), ('sum_bqx2', 'bqx_60 * bqx_60')], partition_by, row_count='bqx_rows') }},

trailing_std as (
    -- std of bqx_60 over the {{ h }} rows ending at each minute
    select
        pair,
        ts_utc,
        segment_start_utc,
        bqx_60,
        case when bqx_rows >= {{ h }} then
            {{ sample_std_from_sums(
                window_from_running('sum_bqx', h, partition_by),
                window_from_running('sum_bqx2', h, partition_by),
                h) }}
        end as bqx_std_60
    from running
),

ahead as (
    select
        pair,
        ts_utc,
        lead(ts_utc, {{ h }}) over (partition by {{ partition_by }} order by ts_utc) as target_ts_utc,
        lead(bqx_60, {{ h }}) over (partition by {{ partition_by }} order by ts_utc) as bqx_t60,
        lead(bqx_std_60, {{ h }}) over (partition by {{ partition_by }} order by ts_utc) as vol_t60
    from trailing_std
)
{%- endmacro %}
