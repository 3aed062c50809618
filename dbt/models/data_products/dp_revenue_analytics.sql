{#
    Incremental: every run recomputes the whole (small, monthly) history in the CTEs, so growth and
    running totals stay exact, but only merges the last three months into the table. Refunds land
    up to a month after the order, so older months no longer change.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['revenue_month', 'channel'],
    on_schema_change='append_new_columns',
    properties=iceberg_properties(partitioning=['year(revenue_month)'])
) }}

with data_range as (
    select min(order_date) as first_date, max(order_date) as as_of_date
    from {{ ref('int_orders') }}
),

-- One row per month and channel, plus one per month for all channels together (channel 'all').
monthly as (
    select
        order_month as revenue_month,
        coalesce(channel, 'all') as channel,
        sum(gross_revenue) as gross_revenue,
        sum(refunded_amount) as refunded_amount,
        sum(net_revenue) as net_revenue,
        count(case when not is_cancelled then order_id end) as order_count,
        count(case when is_cancelled then order_id end) as cancelled_order_count,
        count(distinct case when not is_cancelled then customer_id end) as customer_count,
        count(case when customer_order_number = 1 then order_id end) as new_customer_count
    from {{ ref('int_orders') }}
    group by grouping sets ((order_month, channel), (order_month))
),

-- Joins on the shifted month rather than lag(), so a month without orders never shifts the comparison.
compared as (
    select
        this_month.*,
        previous_month.net_revenue as net_revenue_previous_month,
        last_year.net_revenue as net_revenue_same_month_last_year,
        all_channels.net_revenue as all_channels_net_revenue
    from monthly as this_month
    inner join monthly as all_channels
        on all_channels.channel = 'all' and this_month.revenue_month = all_channels.revenue_month
    left join monthly as previous_month
        on this_month.channel = previous_month.channel
        and previous_month.revenue_month = {{ shift_date('this_month.revenue_month', -1, 'month') }}
    left join monthly as last_year
        on this_month.channel = last_year.channel
        and last_year.revenue_month = {{ shift_date('this_month.revenue_month', -12, 'month') }}
),

accumulated as (
    select
        compared.*,
        sum(net_revenue) over (
            partition by channel, extract(year from revenue_month)
            order by revenue_month rows between unbounded preceding and current row
        ) as net_revenue_year_to_date,
        sum(net_revenue) over (
            partition by channel order by revenue_month rows between unbounded preceding and current row
        ) as net_revenue_running_total,
        -- Complete when the data covers the month from its first to its last day.
        data_range.first_date <= revenue_month
        and {{ shift_date('revenue_month', 1, 'month') }} <= {{ shift_date('data_range.as_of_date', 1) }}
            as is_complete_month
    from compared
    cross join data_range
)

select
    cast(revenue_month as date) as revenue_month,
    cast(channel as varchar) as channel,
    cast(gross_revenue as decimal(18, 2)) as gross_revenue,
    cast(refunded_amount as decimal(18, 2)) as refunded_amount,
    cast(net_revenue as decimal(18, 2)) as net_revenue,
    cast(order_count as bigint) as order_count,
    cast(cancelled_order_count as bigint) as cancelled_order_count,
    cast(customer_count as bigint) as customer_count,
    cast(new_customer_count as bigint) as new_customer_count,
    cast({{ safe_divide('net_revenue', 'order_count') }} as decimal(18, 2)) as average_order_value,
    cast(round({{ safe_divide('net_revenue', 'all_channels_net_revenue') }}, 4) as double) as share_of_net_revenue,
    cast(net_revenue_previous_month as decimal(18, 2)) as net_revenue_previous_month,
    cast(round({{ safe_divide('net_revenue - net_revenue_previous_month', 'net_revenue_previous_month') }}, 4) as double)
        as net_revenue_mom_growth,
    cast(net_revenue_same_month_last_year as decimal(18, 2)) as net_revenue_same_month_last_year,
    cast(round({{ safe_divide('net_revenue - net_revenue_same_month_last_year', 'net_revenue_same_month_last_year') }}, 4) as double)
        as net_revenue_yoy_growth,
    cast(net_revenue_year_to_date as decimal(18, 2)) as net_revenue_year_to_date,
    cast(net_revenue_running_total as decimal(18, 2)) as net_revenue_running_total,
    cast(is_complete_month as boolean) as is_complete_month,
    {{ utc_now() }} as data_product_updated_at
from accumulated
{% if is_incremental() %}
where revenue_month >= (select {{ shift_date('max(revenue_month)', -2, 'month') }} from {{ this }})
{% endif %}
