{#
    Custom schemas are used verbatim: a model configured with schema `staging` lands in `staging`,
    not in dbt's default `<target schema>_staging`.

    Models without one (the data products) land in the gold schema, var('gold_schema'). It is read
    here because dbt_project.yml cannot use the vars it defines itself.

    Write-audit-publish on DuckDB: the portal audits a new or changed product by building it with
    dbt's target path set to `<target>/wap_audit/<its name>`, and that one model then lands in the
    audit schema while everything it reads still resolves to where it really is. The portal copies
    it to gold only when the model and all its tests pass (portal/creation/publish/).
    Why the target path and not a var or an env var: dbt hashes vars, and tracks env vars read by
    this macro, and either change makes it parse the whole project again; the target path is
    neither, so the audit build parses only the product's own files.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set target_path = (invocation_args_dict.get('target_path') or '') | string | replace('\\', '/') -%}
    {%- if node is not none and target_path.rstrip('/').endswith('/wap_audit/' ~ node.name) -%}
        {{ var('wap_schema', 'audit') | trim }}
    {%- elif custom_schema_name is none -%}
        {{ var('gold_schema', target.schema) | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
