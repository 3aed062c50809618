-- Business rule: a customer's lifetime value is exactly the net revenue of their orders,
-- and the order count matches. Returns customers where the Customer 360 disagrees.
with from_orders as (
    select
        customer_id,
        sum(net_revenue) as net_revenue,
        count(case when not is_cancelled then order_id end) as order_count
    from {{ ref('int_orders') }}
    group by customer_id
)

select
    customers.customer_id,
    customers.lifetime_value,
    coalesce(from_orders.net_revenue, 0) as net_revenue_of_orders,
    customers.order_count,
    coalesce(from_orders.order_count, 0) as orders
from {{ ref('dp_customer_360') }} as customers
left join from_orders on customers.customer_id = from_orders.customer_id
where customers.lifetime_value <> coalesce(from_orders.net_revenue, 0)
    or customers.order_count <> coalesce(from_orders.order_count, 0)
