{#
    Custom schemas are used verbatim: a model configured with schema `staging` lands in `staging`,
    not in dbt's default `<target schema>_staging`.

    Models without one (the data products) land in the gold schema, var('gold_schema'). It is read
    here because dbt_project.yml cannot use the vars it defines itself.

    Write-audit-publish: the portal builds a new or changed product with the vars `wap_model` (its
    name) and `wap_schema` (the audit schema), so that one model lands in the audit schema while
    everything it reads still resolves to where it really is. The portal copies it to gold only
    when the model and all its tests pass (portal/creation.py).
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if node is not none and node.name == var('wap_model', none) -%}
        {{ var('wap_schema') | trim }}
    {%- elif custom_schema_name is none -%}
        {{ var('gold_schema', target.schema) | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
