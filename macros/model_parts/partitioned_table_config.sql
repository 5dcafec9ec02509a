{% macro partitioned_table_config() -%}
    {#- The first line of a model materialized as partitioned_table: its config, and the
        comment that records its dependency on seed pairs (the partition tree has one branch
        per pair of the seed), on the line below, as the models wrote it before -#}
    {%- do config(materialized='partitioned_table') -%}
    {{ return('\n-- depends_on: ' ~ ref('pairs') ~ ' (the partition tree has one branch per pair of the seed)') }}
{%- endmacro %}
