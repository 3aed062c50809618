select
    cast(payment_id as bigint) as payment_id,
    cast(order_id as bigint) as order_id,
    lower(method) as payment_method,
    lower(status) as payment_status,
    cast(amount as decimal(18, 2)) as amount,
    cast(attempted_at as timestamp(6)) as attempted_at,
    cast(updated_at as timestamp(6)) as updated_at
from {{ source('silver', 'payments') }}
