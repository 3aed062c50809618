-- Business rule: refunds never exceed what was paid, so no order, line or month has negative net revenue.
-- Returns the offending rows.
select 'order' as grain, cast(order_id as varchar) as id, net_revenue
from {{ ref('int_orders') }}
where net_revenue < 0 or refunded_amount > gross_revenue

union all

select 'order line' as grain, cast(order_item_id as varchar) as id, net_revenue
from {{ ref('int_order_lines') }}
where net_revenue < 0

union all

select 'month' as grain, cast(revenue_month as varchar) || ' ' || channel as id, net_revenue
from {{ ref('dp_revenue_analytics') }}
where net_revenue < 0
