-- Size and value of each customer segment of the Customer 360 data product.
with customers as (
    select * from {{ ref('dp_customer_360') }}
)

select
    segment,
    cast(count(*) as bigint) as customer_count,
    cast(round({{ safe_divide('count(*)', 'sum(count(*)) over ()') }}, 4) as double) as share_of_customers,
    cast(sum(lifetime_value) as decimal(18, 2)) as lifetime_value,
    cast(round({{ safe_divide('sum(lifetime_value)', 'sum(sum(lifetime_value)) over ()') }}, 4) as double)
        as share_of_lifetime_value,
    cast(avg(lifetime_value) as decimal(18, 2)) as average_lifetime_value,
    cast(round(avg(order_count), 2) as double) as average_order_count,
    cast(round(avg(days_since_last_order), 1) as double) as average_days_since_last_order,
    cast(round(avg(case when marketing_opt_in then 1.0 else 0.0 end), 4) as double) as marketing_opt_in_rate
from customers
group by segment
