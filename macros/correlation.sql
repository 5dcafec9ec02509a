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
