select
    cast(channel_id as bigint) as channel_id,
    lower(channel_code) as channel_code,
    channel_name,
    lower(channel_type) as channel_type,
    cast(launched_at as timestamp(6)) as launched_at,
    cast(updated_at as timestamp(6)) as updated_at
from {{ source('silver', 'channels') }}
