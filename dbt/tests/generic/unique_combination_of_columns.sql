{#
    The columns together identify a row: the uniqueness test for composite keys
    (dbt's built-in `unique` takes one column; no package is needed for this one).
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {%- set columns = combination_of_columns | join(', ') %}
    select {{ columns }}, count(*) as rows_with_this_key
    from {{ model }}
    group by {{ columns }}
    having count(*) > 1
{% endtest %}
