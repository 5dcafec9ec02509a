{#- Merge joins only: the build creates bqx_values just before this model and autovacuum has
    not analyzed it yet, so the planner guesses sizes and may pick a nested loop over two
    unindexed-looking inputs for each of the 168 couples (make demo, 28 generated pairs × 18
    days: 7+ minutes instead of seconds). Both inputs come in primary-key order. -#}
{{ config(materialized='table', pre_hook=local_settings({
    'enable_nestloop': 'off',
    'enable_hashjoin': 'off',
    'max_parallel_workers_per_gather': 0,
})) }}
-- depends_on: {{ ref('bqx_values') }} (one join per sister couple, listed at compile time)

-- The sisters each pair's cross-pair features are built against, chosen on the train period
-- only (bqx.ml_periods): of the 12 pairs sharing a currency, the 2 whose bqx_60 correlates
-- most strongly (by absolute Pearson correlation over common minutes) with the pair's.
-- Ties go to the sister first in alphabetical order, so the choice is deterministic.
{%- set train = period_bounds('train') %}

with correlations as (
    {{ sister_train_correlations(train) }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by pair order by abs(coalesce(train_correlation, 0)) desc, sister
        ) as sister_slot
    from correlations
),

final as (
    select
        r.pair,
        r.sister_slot,
        r.sister,
        r.shared_currency,
        coalesce(r.train_correlation, 0) as train_correlation,
        r.train_minutes,
        {{ train.start }} as train_start_utc,
        {{ train.end }} as train_end_utc
    from ranked as r
    where r.sister_slot <= {{ sister_slots() | length }}
)

select * from final
