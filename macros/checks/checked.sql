{#- Values that reach SQL text are checked first. -#}

{% macro checked(value, pattern, message) -%}
    {#- `value` unchanged when it matches the regex `pattern` (re.match), else a compile error
        saying `message` -#}
    {%- if not modules.re.match(pattern, value) -%}
        {{ exceptions.raise_compiler_error(message) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}
