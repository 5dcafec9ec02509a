{% test has_every_partition(model) %}
{#- The partition tree has a branch for every pair of seeds/pairs.csv and, under it, a leaf
    for every month between the first and the last raw bar. Returns the missing partitions
    (on Spark: the rows outside their pair and month partition; macros/tests/data_test_helpers.sql). -#}
{{ missing_partitions(model) }}
{% endtest %}
