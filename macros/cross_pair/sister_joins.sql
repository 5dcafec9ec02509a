{#- The pair beside its selected sisters (sister_pair_selection) at the same minute, as the
    cross-pair models that compare a pair's features with its sisters' read them. -#}

{% macro pair_beside_sisters_ctes(name, rows, relation) -%}
    {#- Three CTEs: `sisters` (pair, sister_slot, sister of sister_pair_selection, pairs in
        scope); `rows`, the rows of `relation` in the months in scope; and `name`: pair,
        ts_utc and the caller's select items over `rows` as p joined, for every slot k of
        sister_slots(), to sisters as k<k> and to `rows` again as s<k> (the sister at the same
        minute). Minutes without every sister are dropped. -#}
sisters as (
    select
        pair,
        sister_slot,
        sister
    from {{ ref('sister_pair_selection') }}
    where {{ pair_in_scope('pair') }}
),

{{ rows_in_scope(rows, relation, by_pair=false) }},

{{ name }} as (
    select
        p.pair,
        p.ts_utc,{{ caller() }}
    from {{ rows }} as p
    {%- for slot in sister_slots() %}
    inner join sisters as k{{ slot }} on p.pair = k{{ slot }}.pair and k{{ slot }}.sister_slot = {{ slot }}
    inner join {{ rows }} as s{{ slot }} on k{{ slot }}.sister = s{{ slot }}.pair and p.ts_utc = s{{ slot }}.ts_utc
    {%- endfor %}
)
{%- endmacro %}


{% macro sister_train_correlations(train) -%}
    {#- A query of pair, sister, shared_currency, train_correlation (Pearson, of bqx_60) and
        train_minutes (common minutes) for every row of seeds/sister_pairs.csv whose two pairs
        share minutes in the train period `train` (period_bounds('train')). -#}
    {{ return(adapter.dispatch('sister_train_correlations', 'bqx')(train)) }}
{%- endmacro %}

{% macro default__sister_train_correlations(train) -%}
    {#- PostgreSQL: one join per unordered couple, over the two pairs' partitions only, read
        by both of its pairs (corr is symmetric in its arguments, bit for bit:
        Youngs-Cramer sums, then Sxy / sqrt(Sxx * Syy)). One hash join of every ordered pair on
        (pair, ts_utc) took 241 s on real 2017 (28 pairs) and 49.2 s on real Feb-Mar 2017 (train
        period five weeks) in a build; per couple, 2.8 s alone on the latter, the same rows. -#}
    {%- set sisters = sister_map() %}
    {%- set couples = sister_couples(sisters.keys() | list, sisters, sisters.keys() | list) %}
    select
        s.pair,
        s.sister,
        s.shared_currency,
        c.train_correlation,
        c.train_minutes
    from {{ ref('sister_pairs') }} as s
    inner join (
        {%- for x, y in couples %}
        select
            '{{ validate_pair(x) }}' as pair_x,
            '{{ validate_pair(y) }}' as pair_y,
            corr(p.bqx_60, q.bqx_60) as train_correlation,
            count(*) as train_minutes
        from {{ ref('bqx_values') }} as p
        inner join {{ ref('bqx_values') }} as q on p.ts_utc = q.ts_utc
        where
            p.pair = '{{ validate_pair(x) }}'
            and q.pair = '{{ validate_pair(y) }}'
            and p.ts_utc >= {{ train.start }} and p.ts_utc < {{ train.end }}
            and q.ts_utc >= {{ train.start }} and q.ts_utc < {{ train.end }}
        having count(*) > 0
        {{ "union all" if not loop.last }}
        {%- endfor %}
    ) as c
        on
            c.pair_x = least(s.pair, s.sister)
            and c.pair_y = greatest(s.pair, s.sister)
{%- endmacro %}

{% macro spark__sister_train_correlations(train) -%}
    {#- Spark plans each union member as its own join and shuffle: one join of every ordered
        pair instead -#}
    select
        s.pair,
        s.sister,
        s.shared_currency,
        corr(p.bqx_60, q.bqx_60) as train_correlation,
        count(*) as train_minutes
    from {{ ref('sister_pairs') }} as s
    inner join {{ ref('bqx_values') }} as p on s.pair = p.pair
    inner join {{ ref('bqx_values') }} as q on s.sister = q.pair and p.ts_utc = q.ts_utc
    where
        p.ts_utc >= {{ train.start }} and p.ts_utc < {{ train.end }}
        and q.ts_utc >= {{ train.start }} and q.ts_utc < {{ train.end }}
    group by s.pair, s.sister, s.shared_currency
{%- endmacro %}
