-- One row per order line, with the revenue, refund and cost definitions every data product shares:
-- cancelled orders earn nothing, refunds reduce revenue, returned goods cost nothing.
with lines as (
    select * from {{ ref('stg_order_items') }}
),

orders as (
    select order_id, customer_id, channel_id, ordered_at, order_date, order_status
    from {{ ref('stg_orders') }}
),

products as (
    select product_id, category, unit_cost
    from {{ ref('stg_products') }}
),

line_refunds as (
    select order_item_id, sum(refund_amount) as refunded_amount
    from {{ ref('stg_refunds') }}
    where not is_goodwill_credit
    group by order_item_id
),

joined as (
    select
        lines.order_item_id,
        lines.order_id,
        orders.customer_id,
        orders.channel_id,
        orders.ordered_at,
        orders.order_date,
        orders.order_status = 'cancelled' as is_cancelled,
        line_refunds.order_item_id is not null as is_returned,
        lines.product_id,
        products.category,
        lines.quantity,
        lines.line_amount,
        cast(coalesce(line_refunds.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
        -- Valued at today's unit cost: the catalogue keeps no cost history.
        cast(lines.quantity * products.unit_cost as decimal(18, 2)) as line_cost
    from lines
    inner join orders on lines.order_id = orders.order_id
    inner join products on lines.product_id = products.product_id
    left join line_refunds on lines.order_item_id = line_refunds.order_item_id
)

select
    order_item_id,
    order_id,
    customer_id,
    channel_id,
    ordered_at,
    order_date,
    is_cancelled,
    is_returned,
    product_id,
    category,
    quantity,
    line_amount,
    case when is_cancelled then 0 else quantity end as units_sold,
    case when is_returned then quantity else 0 end as units_returned,
    case when is_cancelled then cast(0 as decimal(18, 2)) else line_amount end as gross_revenue,
    refunded_amount,
    cast(case when is_cancelled then 0 else line_amount - refunded_amount end as decimal(18, 2)) as net_revenue,
    case when is_cancelled or is_returned then cast(0 as decimal(18, 2)) else line_cost end as cost_of_goods_sold
from joined
