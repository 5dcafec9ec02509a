{% macro pearson_from_sums(sx, sy, sxx, syy, sxy, n) -%}
    {#- Pearson correlation from window sums; 0 when either side is flat. Clamped to [-1, 1]
        against rounding. -#}
    coalesce(
        greatest(-1.0, least(1.0,
            ({{ n }} * {{ sxy }} - {{ sx }} * {{ sy }})
            / nullif(sqrt(greatest({{ n }} * {{ sxx }} - {{ sx }} * {{ sx }}, 0)
                        * greatest({{ n }} * {{ syy }} - {{ sy }} * {{ sy }}, 0)), 0)
        )),
        0
    )
{%- endmacro %}


{% macro couple_cte(x, y) -%}
    {#- name of the CTE holding the correlations of the sister couple (x, y), x < y -#}
    {{ return('couple_' ~ validate_pair(x) | lower ~ '_' ~ validate_pair(y) | lower) }}
{%- endmacro %}

{% macro sister_correlation_of_couple(x, y, partition) -%}
    {#- ts_utc, corr_<W> for W in sister_corr_windows(): the rolling correlation of the bqx of
        pairs x and y over their last W joint minutes, from running sums within `partition`
        (the two pairs' segments) -#}
    {{ adapter.dispatch('sister_correlation_of_couple', 'bqx')(x, y, partition) }}
{%- endmacro %}

{% macro default__sister_correlation_of_couple(x, y, partition) -%}
    select
        ts_utc,
        {%- for w in sister_corr_windows() %}
        case when joint_rows >= {{ w }} then
            {{ pearson_from_sums(
                window_from_running('sum_x', w, partition),
                window_from_running('sum_y', w, partition),
                window_from_running('sum_xx', w, partition),
                window_from_running('sum_yy', w, partition),
                window_from_running('sum_xy', w, partition),
                w) }}
        end as corr_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    from (
        select
            a.ts_utc,
            a.segment_start_utc as segment_x,
            b.segment_start_utc as segment_y,
            row_number() over joint as joint_rows,
            sum(a.bqx_60) over joint as sum_x,
            sum(b.bqx_60) over joint as sum_y,
            sum(a.bqx_60 * a.bqx_60) over joint as sum_xx,
            sum(b.bqx_60 * b.bqx_60) over joint as sum_yy,
            sum(a.bqx_60 * b.bqx_60) over joint as sum_xy
        from {{ ref('int_m1_series') }} as a
        inner join {{ ref('int_m1_series') }} as b on a.ts_utc = b.ts_utc
        where
            a.pair = '{{ validate_pair(x) }}'
            and b.pair = '{{ validate_pair(y) }}'
            and a.bqx_60 is not null
            and b.bqx_60 is not null
            and {{ ts_in_scope('a.ts_utc', halo_before=true) }}
        window joint as (
            partition by a.segment_start_utc, b.segment_start_utc order by a.ts_utc
            rows unbounded preceding
        )
    ) as running
{%- endmacro %}


{% macro sister_correlation_columns(rows=none, absent=[]) -%}
    {#- sister_<NN>_corr_<W> for the 12 sister ranks and sister_corr_windows(): pivoted from
        `rows` (one row per sister_rank with corr_<W>), 0 for the ranks in `absent` (sisters
        with no bars); without `rows`, typed nulls (the shape of an empty table) -#}
    {%- set columns = [] %}
    {%- for rank in range(1, 13) %}
        {%- for w in sister_corr_windows() %}
            {%- set pivoted = 'max(case when ' ~ rows ~ '.sister_rank = ' ~ rank ~ ' then ' ~ rows ~ '.corr_' ~ w ~ ' end)' %}
            {%- set value = sql_cast('null', 'float8') if rows is none
                else ('coalesce(' ~ pivoted ~ ', 0)' if rank in absent else pivoted) %}
            {%- do columns.append(value ~ ' as sister_' ~ '%02d' % rank ~ '_corr_' ~ w) %}
        {%- endfor %}
    {%- endfor %}
    {{ columns | join(',\n        ') }}
{%- endmacro %}

{% macro sister_couples_cte(couples, partition) -%}
    {#- Written right after `with`: CTEs shared by the couples, if the engine wants them.
        PostgreSQL computes each couple in its own CTE from the two pairs' partitions (an
        index range each), so nothing is shared. Spark would plan one join, window and
        shuffle per couple (168 for the full universe, hundreds of stages and sort buffers in
        one query), so it computes every couple in one join and one window pass instead, and
        each couple's CTE reads its rows. -#}
    {{ return(adapter.dispatch('sister_couples_cte', 'bqx')(couples, partition)) }}
{%- endmacro %}

{% macro default__sister_couples_cte(couples, partition) -%}{%- endmacro %}

{% macro spark__sister_couples_cte(couples, partition) -%}
    {%- if couples %}
{%- set all_partition = 'pair_x, pair_y, ' ~ partition %}
all_couples as (
    select
        pair_x,
        pair_y,
        ts_utc,
        {%- for w in sister_corr_windows() %}
        case when joint_rows >= {{ w }} then
            {{ pearson_from_sums(
                window_from_running('sum_x', w, all_partition),
                window_from_running('sum_y', w, all_partition),
                window_from_running('sum_xx', w, all_partition),
                window_from_running('sum_yy', w, all_partition),
                window_from_running('sum_xy', w, all_partition),
                w) }}
        end as corr_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    from (
        select
            c.pair_x,
            c.pair_y,
            a.ts_utc,
            a.segment_start_utc as segment_x,
            b.segment_start_utc as segment_y,
            row_number() over joint as joint_rows,
            sum(a.bqx_60) over joint as sum_x,
            sum(b.bqx_60) over joint as sum_y,
            sum(a.bqx_60 * a.bqx_60) over joint as sum_xx,
            sum(b.bqx_60 * b.bqx_60) over joint as sum_yy,
            sum(a.bqx_60 * b.bqx_60) over joint as sum_xy
        from (values
            {%- for x, y in couples %}
            ('{{ validate_pair(x) }}', '{{ validate_pair(y) }}'){{ "," if not loop.last }}
            {%- endfor %}
        ) as c (pair_x, pair_y)
        inner join {{ ref('int_m1_series') }} as a on a.pair = c.pair_x
        inner join {{ ref('int_m1_series') }} as b on b.pair = c.pair_y and a.ts_utc = b.ts_utc
        where
            a.bqx_60 is not null
            and b.bqx_60 is not null
            and {{ ts_in_scope('a.ts_utc', halo_before=true) }}
        window joint as (
            partition by c.pair_x, c.pair_y, a.segment_start_utc, b.segment_start_utc
            order by a.ts_utc
            rows unbounded preceding
        )
    ) as running
),
    {%- endif %}
{%- endmacro %}

{% macro spark__sister_correlation_of_couple(x, y, partition) -%}
    select
        ts_utc,
        {%- for w in sister_corr_windows() %}
        corr_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    from all_couples
    where pair_x = '{{ validate_pair(x) }}' and pair_y = '{{ validate_pair(y) }}'
{%- endmacro %}
