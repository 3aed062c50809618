{#
    Table properties for the Iceberg tables dbt-trino creates, e.g.
        {{ config(properties=iceberg_properties(partitioning=['category'])) }}
    Other adapters get none: DuckDB tables have no such clause.
#}
{% macro iceberg_properties(partitioning=[]) -%}
    {%- if target.type != 'trino' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set properties = {'format': "'PARQUET'"} -%}
    {%- if partitioning -%}
        {%- do properties.update({'partitioning': "ARRAY['" ~ (partitioning | join("', '")) ~ "']"}) -%}
    {%- endif -%}
    {{ return(properties) }}
{%- endmacro %}
