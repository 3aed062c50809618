select
    cast(product_id as bigint) as product_id,
    upper(trim(sku)) as sku,
    trim(product_name) as product_name,
    category,
    coalesce(brand, 'Unbranded') as brand,
    cast(cost as decimal(18, 2)) as unit_cost,
    cast(price as decimal(18, 2)) as list_price,
    cast(launched_at as timestamp(6)) as launched_at,
    cast(launched_at as date) as launched_on,
    cast(updated_at as timestamp(6)) as updated_at
from {{ source('silver', 'products') }}
