{#- Select lists the models write one column a line. -#}

{% macro numbered(prefix, numbers) -%}
    {#- [prefix ~ n for n in numbers]: the column names of a family's windows or lags -#}
    {%- set names = [] -%}
    {%- for n in numbers -%}{%- do names.append(prefix ~ n) -%}{%- endfor -%}
    {{ return(names) }}
{%- endmacro %}

{% macro column_lines(columns, indent=8) -%}
    {#- select-list items, one a line, each continuation line indented by `indent` spaces -#}
    {{ return(columns | join(',\n' ~ ' ' * indent)) }}
{%- endmacro %}

{% macro final_cte(source, columns, where=none) -%}
    {#- CTE `final`: pair, ts_utc and `columns` of `source`, the rows matching `where` -#}
final as (
    select
        pair,
        ts_utc,
        {{ column_lines(columns) }}
    from {{ source }}
    {%- if where %}
    where {{ where }}
    {%- endif %}
)
{%- endmacro %}

{% macro product(outer, inner) -%}
    {#- [(o, i) for o in outer for i in inner]: one loop, in place of two nested ones, over the
        columns a model writes per slot and window -#}
    {%- set pairs = [] -%}
    {%- for o in outer -%}{%- for i in inner -%}{%- do pairs.append((o, i)) -%}{%- endfor -%}{%- endfor -%}
    {{ return(pairs) }}
{%- endmacro %}
