{#
    SQL that DuckDB and Trino spell differently. Each helper dispatches (adapter.dispatch), so any
    adapter can override it: default__ holds the form both engines accept, and duckdb__ / trino__
    exist only where they really disagree. Prefer dbt's own cross-database macros (dbt.datediff,
    dbt.type_string, ...) when one exists.
#}

{# The first day of the month, as a date. DuckDB's date_trunc returns a timestamp, Trino's a date: the cast evens it out. #}
{% macro month_start(expr) -%}
    {{ return(adapter.dispatch('month_start', 'asgard')(expr)) }}
{%- endmacro %}

{% macro default__month_start(expr) -%}
    cast(date_trunc('month', {{ expr }}) as date)
{%- endmacro %}


{# A date moved by a whole number of days/months/years; stays a date. #}
{% macro shift_date(expr, amount, unit='day') -%}
    {{ return(adapter.dispatch('shift_date', 'asgard')(expr, amount, unit)) }}
{%- endmacro %}

{% macro default__shift_date(expr, amount, unit) -%}
    cast({{ dbt.dateadd(unit, amount, expr) }} as date)
{%- endmacro %}

{# DuckDB: date + interval is a timestamp, and interval takes an expression only in this form. #}
{% macro duckdb__shift_date(expr, amount, unit) -%}
    cast({{ expr }} + ({{ amount }}) * interval 1 {{ unit }} as date)
{%- endmacro %}

{# Trino: date_add keeps the type of its argument. #}
{% macro trino__shift_date(expr, amount, unit) -%}
    date_add('{{ unit }}', {{ amount }}, cast({{ expr }} as date))
{%- endmacro %}


{# Whole days from start to end (both cast to dates first, so time of day never counts). #}
{% macro days_between(start, end) -%}
    {{ return(adapter.dispatch('days_between', 'asgard')(start, end)) }}
{%- endmacro %}

{% macro default__days_between(start, end) -%}
    date_diff('day', cast({{ start }} as date), cast({{ end }} as date))
{%- endmacro %}


{# Division that yields null instead of failing on zero, always in floating point
   (Trino divides integers as integers: 1 / 2 = 0). #}
{% macro safe_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('safe_divide', 'asgard')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__safe_divide(numerator, denominator) -%}
    (cast({{ numerator }} as double) / nullif(cast({{ denominator }} as double), 0))
{%- endmacro %}


{# Replace every match of a regular expression. DuckDB replaces only the first match unless given the 'g' flag. #}
{% macro regexp_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'asgard')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }})
{%- endmacro %}

{% macro duckdb__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}


{# The build time as a UTC timestamp without time zone (both engines' current_timestamp carries a zone). #}
{% macro utc_now() -%}
    {{ return(adapter.dispatch('utc_now', 'asgard')()) }}
{%- endmacro %}

{% macro default__utc_now() -%}
    cast(current_timestamp at time zone 'UTC' as timestamp(6))
{%- endmacro %}
