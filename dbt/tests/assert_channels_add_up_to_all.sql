-- The 'all' row of each month equals the sum of that month's channel rows.
with channel_sums as (
    select revenue_month, sum(net_revenue) as net_revenue, sum(order_count) as order_count
    from {{ ref('dp_revenue_analytics') }}
    where channel <> 'all'
    group by revenue_month
)

select all_channels.revenue_month, all_channels.net_revenue, channel_sums.net_revenue as sum_of_channels
from {{ ref('dp_revenue_analytics') }} as all_channels
left join channel_sums on all_channels.revenue_month = channel_sums.revenue_month
where all_channels.channel = 'all'
    and (
        channel_sums.revenue_month is null
        or all_channels.net_revenue <> channel_sums.net_revenue
        or all_channels.order_count <> channel_sums.order_count
    )
