{#- Dialect-specific SQL (macros/dialect/), one idea per macro: models call only these; no
    model holds a `::` cast, an interval or a date function. This file: casts and numeric
    literals.
    Dispatched: `default__` renders the PostgreSQL text the models had before Spark (so the
    Postgres build is unchanged), `spark__` renders Spark SQL (3.5 and 4.x, with
    spark.sql.session.timeZone = UTC, see profiles.yml). -#}

{% macro sql_cast(expr, type) -%}
    {#- expr cast to one of the project's types, named as PostgreSQL names them -#}
    {{ return(adapter.dispatch('sql_cast', 'bqx')(expr, type)) }}
{%- endmacro %}

{% macro default__sql_cast(expr, type) -%}{{ expr }}::{{ type }}{%- endmacro %}

{% macro spark__sql_cast(expr, type) -%}
    {%- set spark_types = {
        'float8': 'double', 'double precision': 'double', 'text': 'string',
        'integer': 'int', 'bigint': 'bigint', 'timestamptz': 'timestamp'
    } -%}
    {%- if type not in spark_types -%}
        {{ exceptions.raise_compiler_error("sql_cast: no Spark type for '" ~ type ~ "'") }}
    {%- endif -%}
    cast({{ expr }} as {{ spark_types[type] }})
{%- endmacro %}

{% macro as_double(expr) -%}{{ return(sql_cast(expr, 'float8')) }}{%- endmacro %}

{% macro float_literal(text) -%}
    {#- a literal with a decimal point that must be a binary float on every engine (Spark reads
        `6.0` as decimal(2,1), and decimal division keeps only 6 digits; PostgreSQL's numeric
        is exact and meets float8 at full precision) -#}
    {{ return(adapter.dispatch('float_literal', 'bqx')(text)) }}
{%- endmacro %}

{% macro default__float_literal(text) -%}{{ text }}{%- endmacro %}

{% macro spark__float_literal(text) -%}{{ text }}D{%- endmacro %}

{% macro int_div(numerator, denominator) -%}
    {#- integer division of two integer expressions (Spark's `/` always returns a double) -#}
    {{ return(adapter.dispatch('int_div', 'bqx')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__int_div(numerator, denominator) -%}{{ numerator }} / {{ denominator }}{%- endmacro %}

{% macro spark__int_div(numerator, denominator) -%}{{ numerator }} div {{ denominator }}{%- endmacro %}
