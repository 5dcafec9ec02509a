{{ config(materialized='table') }}

-- The chronological split every stage shares: train, then validation, then test, each
-- separated by an embargo of the longest look-back plus the 60-minute horizon, so no
-- window or target straddles two periods. var('train_end') / var('validation_end') pin the
-- boundaries (pin them for features that must not move when new data arrives); otherwise
-- they fall at train_share and train_share + validation_share of the data's time span.
{%- set embargo = max_lookback_minutes() + target_horizon_minutes() %}

with span as (
    select
        min(ts_utc) as data_start_utc,
        max(ts_utc) + {{ interval_of(1, 'minute') }} as data_end_utc
    from {{ ref('stg_m1_bars') }}
),

boundaries as (
    select
        data_start_utc,
        data_end_utc,
        {{ period_boundary('train_end', var('train_share', 0.6)) }} as train_end_utc,
        {{ period_boundary('validation_end', var('train_share', 0.6) + var('validation_share', 0.2)) }}
            as validation_end_utc
    from span
),

periods as (
    select
        'train' as period,
        1 as period_order,
        data_start_utc as start_utc,
        train_end_utc as end_utc
    from boundaries
    union all
    select
        'validation' as period,
        2 as period_order,
        train_end_utc + {{ interval_of(embargo, 'minute') }} as start_utc,
        validation_end_utc as end_utc
    from boundaries
    union all
    select
        'test' as period,
        3 as period_order,
        validation_end_utc + {{ interval_of(embargo, 'minute') }} as start_utc,
        data_end_utc as end_utc
    from boundaries
),

final as (
    select
        period,
        period_order,
        start_utc,
        end_utc,
        {{ embargo }} as embargo_minutes
    from periods
)

select * from final
