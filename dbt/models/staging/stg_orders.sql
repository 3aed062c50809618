select
    cast(order_id as bigint) as order_id,
    cast(customer_id as bigint) as customer_id,
    cast(channel_id as bigint) as channel_id,
    cast(ordered_at as timestamp(6)) as ordered_at,
    cast(ordered_at as date) as order_date,
    lower(status) as order_status,
    upper(discount_code) as discount_code,
    cast(coalesce(shipping_amount, 0) as decimal(18, 2)) as shipping_amount,
    cast(updated_at as timestamp(6)) as updated_at
from {{ source('silver', 'orders') }}
