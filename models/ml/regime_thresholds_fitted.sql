{{ config(materialized='table') }}
-- depends_on: {{ ref('regime_thresholds') }}

-- Per-pair regime thresholds, fitted on the train period only: the targets of the rows whose
-- 60-minute horizon ends before the train end, computed by the same CTEs as ml_targets. Each
-- threshold is the quantile of vol_t60 or bqx_t60 that gives its label the target share of
-- seeds/regime_thresholds.csv on the train rows (the seed's absolute thresholds, vol 0.5 and
-- bqx ±0.1 / ±0.3, never produced high_vol on real 2017 data and left 90-96% of rows neutral).
-- The rules of a later variable are fitted on the rows no earlier rule caught (bqx among the
-- rows that are not high_vol), so the shares hold for the labels ml_targets assigns.
-- Reads every pair and the whole train period whatever the build's scope: rebuilding a month,
-- or building on a longer history with the same train end, leaves it unchanged.
{%- set h = target_horizon_minutes() %}
{%- set partition = 'pair, segment_start_utc' %}
{%- set train = period_bounds('train') %}
{%- set rules = regime_rules() | selectattr('variable', 'ne', 'none') | list %}
{%- set blocks = rules | map(attribute='block') | unique | list %}
{%- set target_column = {'vol': 'vol_t60', 'bqx': 'bqx_t60'} %}

with {{ horizon_series_cte(['ts_utc >= ' ~ train.start, 'ts_utc < ' ~ train.end]) }},

{{ horizon_target_ctes(partition) }},

train_targets as (
    -- the rows whose horizon ends before the train end
    select
        pair,
        bqx_t60,
        vol_t60
    from ahead
    where
        target_ts_utc = ts_utc + {{ interval_of(h, 'minute') }}
        and target_ts_utc < {{ train.end }}
        and vol_t60 is not null
),

remaining_0 as (
    select
        pair,
        bqx_t60,
        vol_t60
    from train_targets
),
{%- for block in blocks %}
{%- set block_rules = rules | selectattr('block', 'equalto', block) | list %}

fitted_{{ block }} as (
    select
        pair,
        {%- for rule in block_rules %}
        {{ quantile(target_column[rule.variable], rule.level) }} as {{ regime_threshold_column(rule.regime) }}{{ "," if not loop.last }}
        {%- endfor %}
    from remaining_{{ block }}
    group by pair
),

remaining_{{ block + 1 }} as (
    -- the rows the rules so far leave to the next variable's rules
    select
        r.pair,
        r.bqx_t60,
        r.vol_t60
    from remaining_{{ block }} as r
    inner join fitted_{{ block }} as f on r.pair = f.pair
    where not (
        {%- for rule in block_rules %}
        r.{{ target_column[rule.variable] }} {{ rule.comparison }} f.{{ regime_threshold_column(rule.regime) }}{{ " or" if not loop.last }}
        {%- endfor %}
    )
),
{%- endfor %}

train_counts as (
    select
        pair,
        count(*) as train_rows
    from remaining_0
    group by pair
),

final as (
    select
        c.pair,
        c.train_rows,
        {%- for rule in rules %}
        f{{ rule.block }}.{{ regime_threshold_column(rule.regime) }},
        {%- endfor %}
        {{ train.end }} as train_end_utc
    from train_counts as c
    {%- for block in blocks %}
    left join fitted_{{ block }} as f{{ block }} on c.pair = f{{ block }}.pair
    {%- endfor %}
)

select * from final
