{{ config(
    materialized='table',
    properties=iceberg_properties(partitioning=['region'])
) }}

with customers as (
    select * from {{ ref('stg_customers') }}
),

orders as (
    select * from {{ ref('int_orders') }}
    where not is_cancelled
),

as_of as (
    select max(order_date) as as_of_date
    from {{ ref('int_orders') }}
),

order_summary as (
    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(*) as order_count,
        sum(net_revenue) as lifetime_value,
        sum(refunded_amount) as total_refunded
    from orders
    group by customer_id
),

-- Preferred = where the customer spent the most (net), ties broken by name so rebuilds agree.
category_ranking as (
    select
        customer_id,
        category,
        row_number() over (partition by customer_id order by sum(net_revenue) desc, category) as preference
    from {{ ref('int_order_lines') }}
    where not is_cancelled
    group by customer_id, category
),

channel_ranking as (
    select
        customer_id,
        channel,
        row_number() over (
            partition by customer_id order by count(*) desc, sum(net_revenue) desc, channel
        ) as preference
    from orders
    group by customer_id, channel
),

recency as (
    select
        order_summary.*,
        {{ days_between('order_summary.last_order_date', 'as_of.as_of_date') }} as days_since_last_order
    from order_summary
    cross join as_of
),

scored as (
    select
        *,
        -- Recency and frequency use fixed business bands: half the customers order once, and
        -- quintiles would put identical customers into different scores.
        case
            when days_since_last_order <= 30 then 5
            when days_since_last_order <= 90 then 4
            when days_since_last_order <= 180 then 3
            when days_since_last_order <= 365 then 2
            else 1
        end as recency_score,
        case
            when order_count >= 8 then 5
            when order_count >= 5 then 4
            when order_count >= 3 then 3
            when order_count = 2 then 2
            else 1
        end as frequency_score,
        -- Spend is spread continuously, so quintiles of lifetime value work for monetary.
        ntile(5) over (order by lifetime_value, customer_id) as monetary_score
    from recency
)

select
    cast(customers.customer_id as bigint) as customer_id,
    cast(customers.full_name as varchar) as full_name,
    cast(customers.email as varchar) as email,
    cast(customers.country_code as varchar) as country_code,
    cast(customers.region as varchar) as region,
    cast(customers.marketing_opt_in as boolean) as marketing_opt_in,
    cast(customers.signed_up_at as timestamp(6)) as signed_up_at,
    cast(scored.first_order_date as date) as first_order_date,
    cast(scored.last_order_date as date) as last_order_date,
    cast(coalesce(scored.order_count, 0) as bigint) as order_count,
    cast(coalesce(scored.lifetime_value, 0) as decimal(18, 2)) as lifetime_value,
    cast(scored.lifetime_value / scored.order_count as decimal(18, 2)) as average_order_value,
    cast(coalesce(scored.total_refunded, 0) as decimal(18, 2)) as total_refunded,
    cast(category_ranking.category as varchar) as preferred_category,
    cast(channel_ranking.channel as varchar) as preferred_channel,
    cast(scored.days_since_last_order as integer) as days_since_last_order,
    cast(scored.recency_score as integer) as recency_score,
    cast(scored.frequency_score as integer) as frequency_score,
    cast(scored.monetary_score as integer) as monetary_score,
    cast(
        case
            when scored.customer_id is null then 'Prospect'
            when scored.recency_score >= 4 and scored.frequency_score >= 4 then 'Champions'
            when scored.recency_score >= 3 and scored.frequency_score >= 3 then 'Loyal'
            when scored.recency_score >= 4 and scored.frequency_score = 1 then 'New'
            when scored.recency_score >= 3 then 'Promising'
            when scored.frequency_score >= 3 then 'At Risk'
            when scored.recency_score = 2 then 'Hibernating'
            else 'Lost'
        end as varchar
    ) as segment,
    {{ utc_now() }} as data_product_updated_at
from customers
left join scored on customers.customer_id = scored.customer_id
left join category_ranking
    on customers.customer_id = category_ranking.customer_id and category_ranking.preference = 1
left join channel_ranking
    on customers.customer_id = channel_ranking.customer_id and channel_ranking.preference = 1
