{% macro family_columns(relation, alias, prefix='') -%}
    {#- The feature columns of a family table (all but the pair/ts_utc key and, on Spark, the
        partition column), alias-qualified and optionally renamed with a prefix (reg_rate and
        reg_bqx share column names). -#}
    {%- if not execute -%}{{ return(alias ~ '.*') }}{%- endif -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) if column.name not in ('pair', 'ts_utc', spark_partition_column()) -%}
        {%- if not modules.re.match('^[a-z_][a-z0-9_]*$', column.name) -%}
            {{ exceptions.raise_compiler_error('unexpected column name ' ~ column.name ~ ' in ' ~ relation) }}
        {%- endif -%}
        {%- do names.append(alias ~ '.' ~ column.name ~ (' as ' ~ prefix ~ column.name if prefix else '')) -%}
    {%- endfor -%}
    {{ return(names | join(',\n        ')) }}
{%- endmacro %}
