-- Business rule: the three data products tell the same revenue story.
--   revenue analytics ('all' rows) = customers' lifetime value = products' net revenue - goodwill credits
-- (goodwill credits refund whole orders, so they are not attributed to any product).
-- Returns one row when any two disagree by a cent or more.
with totals as (
    select
        (select sum(net_revenue) from {{ ref('dp_revenue_analytics') }} where channel = 'all') as revenue_analytics,
        (select sum(lifetime_value) from {{ ref('dp_customer_360') }}) as customer_360,
        (select sum(net_revenue) from {{ ref('dp_product_performance') }})
        - (select coalesce(sum(refund_amount), 0) from {{ ref('stg_refunds') }} where is_goodwill_credit)
            as product_performance
)

select *
from totals
where abs(revenue_analytics - customer_360) >= 0.01
    or abs(revenue_analytics - product_performance) >= 0.01
