-- One row per order: what it was worth, what was refunded, and where it sits in the customer's
-- sequence of (non-cancelled) orders.
with orders as (
    select * from {{ ref('stg_orders') }}
),

channels as (
    select channel_id, channel_code
    from {{ ref('stg_channels') }}
),

lines as (
    select
        order_id,
        count(*) as line_count,
        sum(quantity) as units,
        sum(line_amount) as order_value,
        sum(gross_revenue) as gross_revenue,
        sum(refunded_amount) as line_refunds,
        sum(cost_of_goods_sold) as cost_of_goods_sold
    from {{ ref('int_order_lines') }}
    group by order_id
),

-- Goodwill credits refund part of an order without returning a line.
credits as (
    select order_id, sum(refund_amount) as credited_amount
    from {{ ref('stg_refunds') }}
    where is_goodwill_credit
    group by order_id
),

facts as (
    select
        orders.order_id,
        orders.customer_id,
        channels.channel_code as channel,
        orders.ordered_at,
        orders.order_date,
        {{ month_start('orders.order_date') }} as order_month,
        orders.order_status,
        orders.order_status = 'cancelled' as is_cancelled,
        orders.discount_code,
        cast(lines.line_count as integer) as line_count,
        cast(lines.units as integer) as units,
        cast(lines.order_value as decimal(18, 2)) as order_value,
        orders.shipping_amount,
        cast(lines.gross_revenue as decimal(18, 2)) as gross_revenue,
        cast(lines.line_refunds + coalesce(credits.credited_amount, 0) as decimal(18, 2)) as refunded_amount,
        cast(lines.cost_of_goods_sold as decimal(18, 2)) as cost_of_goods_sold
    from orders
    inner join channels on orders.channel_id = channels.channel_id
    inner join lines on orders.order_id = lines.order_id
    left join credits on orders.order_id = credits.order_id
)

select
    *,
    cast(gross_revenue - refunded_amount as decimal(18, 2)) as net_revenue,
    case
        when not is_cancelled
            then row_number() over (partition by customer_id, is_cancelled order by ordered_at, order_id)
    end as customer_order_number,
    case
        when not is_cancelled
            then {{ days_between(
                'lag(order_date) over (partition by customer_id, is_cancelled order by ordered_at, order_id)',
                'order_date'
            ) }}
    end as days_since_previous_order
from facts
