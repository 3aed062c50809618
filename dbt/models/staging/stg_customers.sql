select
    cast(customer_id as bigint) as customer_id,
    trim(first_name) as first_name,
    trim(last_name) as last_name,
    trim(first_name) || ' ' || trim(last_name) as full_name,
    lower(trim(email)) as email,
    -- '+44 781223837' -> '+44781223837', so numbers compare equal however they were typed
    {{ regexp_replace_all('phone', "'[^0-9+]'", "''") }} as phone,
    upper(trim(country_code)) as country_code,
    coalesce(region, 'Unknown') as region,
    coalesce(marketing_opt_in, false) as marketing_opt_in,
    cast(created_at as timestamp(6)) as signed_up_at,
    cast(updated_at as timestamp(6)) as updated_at
from {{ source('silver', 'customers') }}
