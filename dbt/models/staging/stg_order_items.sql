with items as (
    select
        cast(order_item_id as bigint) as order_item_id,
        cast(order_id as bigint) as order_id,
        cast(product_id as bigint) as product_id,
        cast(quantity as integer) as quantity,
        cast(unit_price as decimal(18, 2)) as unit_price,
        -- no discount code means no discount
        cast(coalesce(discount, 0) as decimal(18, 2)) as discount_amount,
        cast(updated_at as timestamp(6)) as updated_at
    from {{ source('silver', 'order_items') }}
)

select
    order_item_id,
    order_id,
    product_id,
    quantity,
    unit_price,
    discount_amount,
    -- decimal arithmetic, so lines add up to the cent
    cast(quantity * unit_price - discount_amount as decimal(18, 2)) as line_amount,
    updated_at
from items
