select
    cast(refund_id as bigint) as refund_id,
    cast(order_id as bigint) as order_id,
    cast(order_item_id as bigint) as order_item_id,
    cast(payment_id as bigint) as payment_id,
    cast(amount as decimal(18, 2)) as refund_amount,
    coalesce(lower(reason), 'not_recorded') as refund_reason,
    order_item_id is null as is_goodwill_credit,
    cast(refunded_at as timestamp(6)) as refunded_at,
    cast(refunded_at as date) as refunded_on,
    cast(updated_at as timestamp(6)) as updated_at
from {{ source('silver', 'refunds') }}
