{#- The months a build covers and the look-back halo a partial build reads before them.
    `bqx build --months 2017-03..2017-04` sets vars month_from / month_to (first days). -#}

{% macro is_partial_build() -%}
    {{ return(var('month_from', none) is not none or (var('pairs', []) | length) > 0) }}
{%- endmacro %}

{% macro halo_days() -%}
    {#- Windows restart after gaps > 60 minutes and FX closes every weekend, so 8 days always
        hold the start of the current segment and the longest look-back (690 minutes).
        The dbt test `segment_start_is_consistent` checks the assumption on every build. -#}
    {{ return(8) }}
{%- endmacro %}

{% macro month_placeholder() -%}
    {#- Stands for the first day of the month a piece builds, in models with
        config(build_by_month=true): the materialization compiles the model once and runs one
        insert per month, replacing this text, so one statement's memory and spill files hold
        a month, not the whole history. -#}
    {{ return('__bqx_month__') }}
{%- endmacro %}

{% macro builds_by_month() -%}
    {#- read when SQL runs; parsing (and sqlfluff's templater) has no model config -#}
    {{ return(execute and config.get('build_by_month', false)) }}
{%- endmacro %}

{% macro scope_start() -%}
    {%- set first = month_placeholder() if builds_by_month() else var('month_from', none) -%}
    {{ return(none if first is none else ts_literal(first ~ ' 00:00:00+00')) }}
{%- endmacro %}

{% macro scope_end() -%}
    {#- exclusive: the first instant after month_to -#}
    {%- set last = month_placeholder() if builds_by_month() else var('month_to', none) -%}
    {{ return(none if last is none else '(' ~ ts_literal(last ~ ' 00:00:00+00') ~ ' + ' ~ interval_of(1, 'month') ~ ')') }}
{%- endmacro %}

{% macro ts_in_scope(column, halo_before=false, halo_after_minutes=0) -%}
    {#- A predicate on `column` for the months in scope; with halo_before, the days before the
        first month that windows look back into are included. -#}
    {%- set start = scope_start() -%}
    {%- if start is none -%}
        true
    {%- else -%}
        {{ column }} >= {{ start }}{{ " - " ~ interval_of(halo_days(), 'day') if halo_before }}
        and {{ column }} < {{ scope_end() }}{{ " + " ~ interval_of(halo_after_minutes, 'minute') if halo_after_minutes }}
    {%- endif -%}
{%- endmacro %}

{% macro raw_bars_relation() -%}
    {#- raw.m1_bars, the one raw table (DESIGN.md), for macros that run outside a model's refs -#}
    {{ return(api.Relation.create(database=target.get('database'), schema='raw', identifier='m1_bars', type='table')) }}
{%- endmacro %}

{% macro months_to_build() -%}
    {#- First days of the months to (re)build: the var range, else every month with raw bars. -#}
    {%- set source_relation = raw_bars_relation() -%}
    {%- set query = months_query(source_relation, var('month_from', none), var('month_to', none)) -%}
    {%- set months = [] -%}
    {%- if execute -%}
        {%- for row in run_query(query) -%}
            {%- if row[0] is not none and modules.re.match('^\d{4}-\d{2}-01$', row[0]) -%}
                {%- do months.append(row[0]) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(months) }}
{%- endmacro %}
