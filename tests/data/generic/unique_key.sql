{% test unique_key(model, columns) %}
{#- No two rows share the same values of `columns` (a composite key). -#}
select {{ columns | join(', ') }}, count(*) as rows_with_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
