-- Daily KPIs for dashboards and anomaly checks, one row per day with orders.
select
    order_date,
    cast(count(case when not is_cancelled then order_id end) as bigint) as order_count,
    cast(count(distinct case when not is_cancelled then customer_id end) as bigint) as customer_count,
    cast(count(case when customer_order_number = 1 then order_id end) as bigint) as new_customer_count,
    cast(sum(gross_revenue) as decimal(18, 2)) as gross_revenue,
    cast(sum(refunded_amount) as decimal(18, 2)) as refunded_amount,
    cast(sum(net_revenue) as decimal(18, 2)) as net_revenue,
    cast(
        {{ safe_divide('sum(net_revenue)', 'count(case when not is_cancelled then order_id end)') }}
        as decimal(18, 2)
    ) as average_order_value,
    cast(round({{ safe_divide('count(case when is_cancelled then order_id end)', 'count(*)') }}, 4) as double)
        as cancellation_rate
from {{ ref('int_orders') }}
group by order_date
