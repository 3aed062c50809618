{{ config(
    materialized='table',
    properties=iceberg_properties(partitioning=['category'])
) }}

with products as (
    select * from {{ ref('stg_products') }}
),

as_of as (
    select max(order_date) as as_of_date
    from {{ ref('int_orders') }}
),

lines as (
    select
        int_order_lines.*,
        -- Two 30-day windows ending at the latest order date: (as_of - 30, as_of] and the 30 days before.
        int_order_lines.order_date > {{ shift_date('as_of.as_of_date', -30) }} as in_last_30_days,
        int_order_lines.order_date > {{ shift_date('as_of.as_of_date', -60) }}
            and int_order_lines.order_date <= {{ shift_date('as_of.as_of_date', -30) }} as in_previous_30_days
    from {{ ref('int_order_lines') }}
    cross join as_of
    where not int_order_lines.is_cancelled
),

sales as (
    select
        product_id,
        sum(units_sold) as units_sold,
        sum(units_returned) as units_returned,
        count(distinct order_id) as order_count,
        sum(gross_revenue) as gross_revenue,
        sum(refunded_amount) as refunded_amount,
        sum(net_revenue) as net_revenue,
        sum(cost_of_goods_sold) as cost_of_goods_sold,
        min(order_date) as first_sold_on,
        max(order_date) as last_sold_on,
        sum(case when in_last_30_days then net_revenue else 0 end) as net_revenue_last_30_days,
        sum(case when in_previous_30_days then net_revenue else 0 end) as net_revenue_previous_30_days
    from lines
    group by product_id
),

measured as (
    select
        products.product_id,
        products.sku,
        products.product_name,
        products.category,
        products.brand,
        products.launched_on,
        products.list_price,
        products.unit_cost,
        coalesce(sales.units_sold, 0) as units_sold,
        coalesce(sales.units_returned, 0) as units_returned,
        coalesce(sales.order_count, 0) as order_count,
        coalesce(sales.gross_revenue, 0) as gross_revenue,
        coalesce(sales.refunded_amount, 0) as refunded_amount,
        coalesce(sales.net_revenue, 0) as net_revenue,
        coalesce(sales.cost_of_goods_sold, 0) as cost_of_goods_sold,
        coalesce(sales.net_revenue, 0) - coalesce(sales.cost_of_goods_sold, 0) as gross_margin,
        sales.first_sold_on,
        sales.last_sold_on,
        coalesce(sales.net_revenue_last_30_days, 0) as net_revenue_last_30_days,
        coalesce(sales.net_revenue_previous_30_days, 0) as net_revenue_previous_30_days
    from products
    left join sales on products.product_id = sales.product_id
),

trended as (
    select
        *,
        {{ safe_divide('net_revenue_last_30_days - net_revenue_previous_30_days', 'net_revenue_previous_30_days') }}
            as revenue_trend_pct
    from measured
)

select
    cast(product_id as bigint) as product_id,
    cast(sku as varchar) as sku,
    cast(product_name as varchar) as product_name,
    cast(category as varchar) as category,
    cast(brand as varchar) as brand,
    cast(launched_on as date) as launched_on,
    cast(list_price as decimal(18, 2)) as list_price,
    cast(unit_cost as decimal(18, 2)) as unit_cost,
    cast(units_sold as bigint) as units_sold,
    cast(units_returned as bigint) as units_returned,
    cast(order_count as bigint) as order_count,
    cast(gross_revenue as decimal(18, 2)) as gross_revenue,
    cast(refunded_amount as decimal(18, 2)) as refunded_amount,
    cast(net_revenue as decimal(18, 2)) as net_revenue,
    cast(cost_of_goods_sold as decimal(18, 2)) as cost_of_goods_sold,
    cast(gross_margin as decimal(18, 2)) as gross_margin,
    cast(round({{ safe_divide('gross_margin', 'net_revenue') }}, 4) as double) as gross_margin_pct,
    cast(round({{ safe_divide('units_returned', 'units_sold') }}, 4) as double) as return_rate,
    cast(rank() over (partition by category order by net_revenue desc) as integer) as category_rank,
    cast(first_sold_on as date) as first_sold_on,
    cast(last_sold_on as date) as last_sold_on,
    cast(net_revenue_last_30_days as decimal(18, 2)) as net_revenue_last_30_days,
    cast(net_revenue_previous_30_days as decimal(18, 2)) as net_revenue_previous_30_days,
    cast(round(revenue_trend_pct, 4) as double) as revenue_trend_pct,
    cast(
        case
            when net_revenue_last_30_days = 0 and net_revenue_previous_30_days = 0 then 'no_recent_sales'
            when net_revenue_previous_30_days = 0 then 'new'
            when revenue_trend_pct >= 0.10 then 'rising'
            when revenue_trend_pct <= -0.10 then 'declining'
            else 'stable'
        end as varchar
    ) as revenue_trend,
    {{ utc_now() }} as data_product_updated_at
from trended
