{#
    Custom schemas are used verbatim: a model configured with schema `staging` lands in `staging`,
    not in dbt's default `<target schema>_staging`.

    Models without one (the data products) land in the gold schema, var('gold_schema'). It is read
    here because dbt_project.yml cannot use the vars it defines itself.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ var('gold_schema', target.schema) | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
