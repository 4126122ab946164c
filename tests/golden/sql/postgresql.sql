-- dialect: postgresql
-- as of: 2024-11-30

-- segment: Favourite Accessories - VIP SMS
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT t2.customer_id 
FROM customer_tags AS t2 
WHERE t2.customer_id IS NOT NULL AND t2.tag = 'VIP') AND c1.customer_id IN (SELECT r5.customer_id 
FROM (SELECT v4.customer_id AS customer_id, v4.field_value AS field_value, v4.orders AS orders, max(v4.orders) OVER (PARTITION BY v4.customer_id) AS most_orders 
FROM (SELECT i3.customer_id AS customer_id, i3.product_category AS field_value, count(DISTINCT i3.order_id) AS orders 
FROM unified_itemized_transactions AS i3 
WHERE i3.customer_id IS NOT NULL AND i3.product_category IS NOT NULL AND i3.order_id IS NOT NULL AND i3.order_datetime IS NOT NULL AND i3.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND i3.order_datetime >= TIMESTAMP '2023-12-01 00:00:00' GROUP BY i3.customer_id, i3.product_category) AS v4) AS r5 
WHERE r5.orders = r5.most_orders AND r5.field_value = 'Accessories') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: New To Pets
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT i2.customer_id 
FROM unified_itemized_transactions AS i2 
WHERE i2.customer_id IS NOT NULL AND i2.order_datetime IS NOT NULL AND i2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND i2.product_category = 'Pet Supplies' GROUP BY i2.customer_id 
HAVING min(i2.order_datetime) IS NOT NULL AND min(i2.order_datetime) < TIMESTAMP '2024-12-01 00:00:00' AND min(i2.order_datetime) >= TIMESTAMP '2024-09-02 00:00:00');

-- segment: Regulars
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND o2.order_datetime >= TIMESTAMP '2024-05-31 00:00:00' GROUP BY o2.customer_id 
HAVING count(DISTINCT CASE WHEN (o2.order_datetime >= TIMESTAMP '2024-10-31 00:00:00') THEN 1 WHEN (o2.order_datetime >= TIMESTAMP '2024-10-01 00:00:00') THEN 2 WHEN (o2.order_datetime >= TIMESTAMP '2024-08-31 00:00:00') THEN 3 WHEN (o2.order_datetime >= TIMESTAMP '2024-07-31 00:00:00') THEN 4 WHEN (o2.order_datetime >= TIMESTAMP '2024-07-01 00:00:00') THEN 5 WHEN (o2.order_datetime >= TIMESTAMP '2024-05-31 00:00:00') THEN 6 END) >= 3);

-- segment: Churn Prevention - Socks
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.predicted_lifecycle_status IS NOT NULL AND c1.predicted_lifecycle_status IN ('Active', 'Cooling down', 'At risk') AND c1.customer_id IN (SELECT i2.customer_id 
FROM unified_itemized_transactions AS i2 
WHERE i2.customer_id IS NOT NULL AND i2.order_datetime IS NOT NULL AND i2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND i2.order_datetime >= TIMESTAMP '2024-08-31 00:00:00' AND i2.product_name = 'Socks' GROUP BY i2.customer_id 
HAVING sum(i2.item_quantity) IS NOT NULL AND sum(i2.item_quantity) = 1);

-- segment: Big Spenders
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 LEFT OUTER JOIN (SELECT o2.customer_id AS customer_id, SUM(o2.order_revenue) AS revenue, count(o2.order_id) AS orders, min(o2.order_datetime) AS first_order, max(o2.order_datetime) AS last_order 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' GROUP BY o2.customer_id) AS d2 ON d2.customer_id = c1.customer_id 
WHERE c1.customer_id IS NOT NULL AND coalesce(d2.revenue, 0) IS NOT NULL AND coalesce(d2.revenue, 0) > 500;

-- segment: Lapsed VIP
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT t2.customer_id 
FROM customer_tags AS t2 
WHERE t2.customer_id IS NOT NULL AND t2.tag = 'VIP') AND c1.customer_id IN (SELECT DISTINCT c3.customer_id AS customer_id 
FROM customer_360 AS c3 LEFT OUTER JOIN (SELECT o4.customer_id AS customer_id, SUM(o4.order_revenue) AS revenue, count(o4.order_id) AS orders, min(o4.order_datetime) AS first_order, max(o4.order_datetime) AS last_order 
FROM unified_transactions AS o4 
WHERE o4.customer_id IS NOT NULL AND o4.order_datetime IS NOT NULL AND o4.order_datetime < TIMESTAMP '2024-12-01 00:00:00' GROUP BY o4.customer_id) AS d4 ON d4.customer_id = c3.customer_id 
WHERE c3.customer_id IS NOT NULL AND coalesce(d4.revenue, 0) IS NOT NULL AND coalesce(d4.revenue, 0) > 500) AND (c1.customer_id NOT IN (SELECT o5.customer_id 
FROM unified_transactions AS o5 
WHERE o5.customer_id IS NOT NULL AND o5.order_datetime IS NOT NULL AND o5.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND o5.order_datetime >= TIMESTAMP '2024-09-02 00:00:00'));

-- segment: Win Back - Email
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.predicted_lifecycle_status IS NOT NULL AND c1.predicted_lifecycle_status IN ('Highly at risk', 'Lost') AND c1.contactable_email IS NOT NULL AND c1.contactable_email = true AND c1.predicted_clv IS NOT NULL AND c1.predicted_clv >= 250;

-- segment: New This Quarter
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.created_at IS NOT NULL AND c1.created_at >= TIMESTAMP '2024-08-30 00:00:00' AND c1.email_opt_in IS NOT NULL AND c1.email_opt_in = true;

-- segment: Top Tier Northwest
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.loyalty_tier IS NOT NULL AND c1.loyalty_tier IN ('Gold', 'Platinum') AND c1.state IS NOT NULL AND c1.state IN ('OR', 'WA');

-- segment: Outside Oregon
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND NOT (c1.state IS NOT NULL AND c1.state = 'OR');

-- segment: High AOV Active
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 LEFT OUTER JOIN (SELECT o2.customer_id AS customer_id, SUM(o2.order_revenue) AS revenue, count(o2.order_id) AS orders, min(o2.order_datetime) AS first_order, max(o2.order_datetime) AS last_order 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' GROUP BY o2.customer_id) AS d2 ON d2.customer_id = c1.customer_id 
WHERE c1.customer_id IS NOT NULL AND d2.orders IS NOT NULL AND d2.orders > 0 AND d2.revenue IS NOT NULL AND d2.revenue >= 150 * d2.orders AND d2.last_order IS NOT NULL AND d2.last_order >= TIMESTAMP '2024-10-01 00:00:00';

-- segment: Under 40 - California
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.birthdate IS NOT NULL AND c1.birthdate > DATE '1984-11-30' AND c1.state IS NOT NULL AND c1.state = 'CA';

-- segment: Gmail Subscribers
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.email IS NOT NULL AND (c1.email LIKE '%@gmail.com' ESCAPE '\') AND c1.email_opt_in IS NOT NULL AND c1.email_opt_in = true;

-- segment: Model - Likely Churners
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT x2.customer_id 
FROM churn_scores AS x2 
WHERE x2.customer_id IS NOT NULL AND x2.score IS NOT NULL AND x2.score >= 0.7) AND c1.contactable_email IS NOT NULL AND c1.contactable_email = true;

-- segment: Wholesale Accounts
-- reads the customer_id column of in-list files, as warehouse tables:
--   audlang_list_6c8d5e03b5c9093b: "../lists/wholesale.csv"
-- `audlang apply` loads a missing one (so do `audlang members "Wholesale Accounts"` and insights, except on a DuckDB file, which they only read)
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT audlang_list_6c8d5e03b5c9093b.customer_id 
FROM audlang_list_6c8d5e03b5c9093b 
WHERE audlang_list_6c8d5e03b5c9093b.customer_id IS NOT NULL);

-- segment: Birthday Month
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.birthdate IS NOT NULL AND (EXTRACT(MONTH FROM c1.birthdate) * 100 + EXTRACT(DAY FROM c1.birthdate)) BETWEEN 1101 AND 1131 AND c1.email_opt_in IS NOT NULL AND c1.email_opt_in = true;

-- segment: Birthday This Week - SMS
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.birthdate IS NOT NULL AND (EXTRACT(MONTH FROM c1.birthdate) * 100 + EXTRACT(DAY FROM c1.birthdate)) BETWEEN 1130 AND 1206 AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Engaged
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND (CASE WHEN (c1.customer_id IN (SELECT t2.customer_id 
FROM customer_tags AS t2 
WHERE t2.customer_id IS NOT NULL AND t2.tag = 'VIP')) THEN CAST(3 AS DECIMAL(30, 12)) ELSE CAST(0 AS DECIMAL(30, 12)) END + CASE WHEN (c1.customer_id IN (SELECT o3.customer_id 
FROM unified_transactions AS o3 
WHERE o3.customer_id IS NOT NULL AND o3.order_datetime IS NOT NULL AND o3.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND o3.order_datetime >= TIMESTAMP '2024-11-01 00:00:00')) THEN CAST(2 AS DECIMAL(30, 12)) ELSE CAST(0 AS DECIMAL(30, 12)) END + CASE WHEN (c1.email_opt_in IS NOT NULL AND c1.email_opt_in = true) THEN CAST(1 AS DECIMAL(30, 12)) ELSE CAST(0 AS DECIMAL(30, 12)) END + CASE WHEN (c1.customer_id IN (SELECT DISTINCT c4.customer_id AS customer_id 
FROM customer_360 AS c4 LEFT OUTER JOIN (SELECT o5.customer_id AS customer_id, SUM(o5.order_revenue) AS revenue, count(o5.order_id) AS orders, min(o5.order_datetime) AS first_order, max(o5.order_datetime) AS last_order 
FROM unified_transactions AS o5 
WHERE o5.customer_id IS NOT NULL AND o5.order_datetime IS NOT NULL AND o5.order_datetime < TIMESTAMP '2024-12-01 00:00:00' GROUP BY o5.customer_id) AS d5 ON d5.customer_id = c4.customer_id 
WHERE c4.customer_id IS NOT NULL AND coalesce(d5.revenue, 0) IS NOT NULL AND coalesce(d5.revenue, 0) > 500)) THEN CAST(0.5 AS DECIMAL(30, 12)) ELSE CAST(0 AS DECIMAL(30, 12)) END + CASE WHEN (NOT (c1.contactable_email IS NOT NULL AND c1.contactable_email = true)) THEN CAST(-2 AS DECIMAL(30, 12)) ELSE CAST(0 AS DECIMAL(30, 12)) END) >= CAST(3 AS DECIMAL(30, 12)) AND c1.contactable_email IS NOT NULL AND c1.contactable_email = true;

-- segment: Top Decile Revenue
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT r4.customer_id 
FROM (SELECT v4.customer_id AS customer_id, v4.ranked_value AS ranked_value, rank() OVER (ORDER BY v4.ranked_value DESC) AS ranked_position, count(*) OVER () AS ranked_population 
FROM (SELECT p2.customer_id AS customer_id, coalesce(d3.revenue, 0) AS ranked_value 
FROM customer_360 AS p2 LEFT OUTER JOIN (SELECT o3.customer_id AS customer_id, SUM(o3.order_revenue) AS revenue, count(o3.order_id) AS orders, min(o3.order_datetime) AS first_order, max(o3.order_datetime) AS last_order 
FROM unified_transactions AS o3 
WHERE o3.customer_id IS NOT NULL AND o3.order_datetime IS NOT NULL AND o3.order_datetime < TIMESTAMP '2024-12-01 00:00:00' GROUP BY o3.customer_id) AS d3 ON d3.customer_id = p2.customer_id 
WHERE p2.customer_id IS NOT NULL) AS v4 
WHERE v4.ranked_value IS NOT NULL) AS r4 
WHERE (CAST(r4.ranked_position AS BIGINT) - 1) * 100 < 10 * CAST(r4.ranked_population AS BIGINT));

-- segment: Holiday Shoppers - SMS
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-01-01 00:00:00' AND o2.order_datetime >= TIMESTAMP '2023-11-01 00:00:00') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Holiday Shoppers - Last Season
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-01-01 00:00:00' AND o2.order_datetime >= TIMESTAMP '2023-11-01 00:00:00') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Valentine Shoppers
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2023-02-15 00:00:00' AND o2.order_datetime >= TIMESTAMP '2023-02-07 00:00:00');

-- segment: Easter Shoppers - SMS
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2023-04-10 00:00:00' AND o2.order_datetime >= TIMESTAMP '2023-03-26 00:00:00') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Spent Over 1000 This Year
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND o2.order_datetime >= TIMESTAMP '2023-12-01 00:00:00' GROUP BY o2.customer_id 
HAVING SUM(o2.order_revenue) IS NOT NULL AND SUM(o2.order_revenue) > 1000) AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Spent Under 50
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 LEFT OUTER JOIN (SELECT o2.customer_id AS customer_id, SUM(o2.order_revenue) AS revenue, count(o2.order_id) AS orders, min(o2.order_datetime) AS first_order, max(o2.order_datetime) AS last_order 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' GROUP BY o2.customer_id) AS d2 ON d2.customer_id = c1.customer_id 
WHERE c1.customer_id IS NOT NULL AND coalesce(d2.revenue, 0) IS NOT NULL AND coalesce(d2.revenue, 0) < 50 AND coalesce(d2.orders, 0) IS NOT NULL AND coalesce(d2.orders, 0) >= 1 AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Ordered Last Week
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND o2.order_datetime >= TIMESTAMP '2024-11-24 00:00:00') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Black Friday 2023 Buyers
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2023-11-25 00:00:00' AND o2.order_datetime >= TIMESTAMP '2023-11-24 00:00:00') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Spring Store Buyers
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-06-01 00:00:00' AND o2.order_datetime >= TIMESTAMP '2024-03-01 00:00:00' AND o2.channel = 'store');

-- segment: Not Ordered in 3 Months
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 LEFT OUTER JOIN (SELECT o2.customer_id AS customer_id, SUM(o2.order_revenue) AS revenue, count(o2.order_id) AS orders, min(o2.order_datetime) AS first_order, max(o2.order_datetime) AS last_order 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' GROUP BY o2.customer_id) AS d2 ON d2.customer_id = c1.customer_id 
WHERE c1.customer_id IS NOT NULL AND coalesce(d2.orders, 0) IS NOT NULL AND coalesce(d2.orders, 0) >= 1 AND (c1.customer_id NOT IN (SELECT o3.customer_id 
FROM unified_transactions AS o3 
WHERE o3.customer_id IS NOT NULL AND o3.order_datetime IS NOT NULL AND o3.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND o3.order_datetime >= TIMESTAMP '2024-08-31 00:00:00')) AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: No Orders Since New Year
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND (c1.customer_id NOT IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND o2.order_datetime >= TIMESTAMP '2024-01-01 00:00:00')) AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Five Plus Orders
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' GROUP BY o2.customer_id 
HAVING count(DISTINCT o2.order_id) IS NOT NULL AND count(DISTINCT o2.order_id) >= 5) AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Two to Four Orders
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT o2.customer_id 
FROM unified_transactions AS o2 
WHERE o2.customer_id IS NOT NULL AND o2.order_datetime IS NOT NULL AND o2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND o2.order_datetime >= TIMESTAMP '2023-12-01 00:00:00' GROUP BY o2.customer_id 
HAVING count(DISTINCT o2.order_id) IS NOT NULL AND count(DISTINCT o2.order_id) >= 2 AND count(DISTINCT o2.order_id) <= 4);

-- segment: Nike Shoe Buyers
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT i2.customer_id 
FROM unified_itemized_transactions AS i2 
WHERE i2.customer_id IS NOT NULL AND i2.order_datetime IS NOT NULL AND i2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND i2.product_brand = 'Nike' AND i2.product_category = 'Shoes') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Dog Treat Buyers
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT i2.customer_id 
FROM unified_itemized_transactions AS i2 
WHERE i2.customer_id IS NOT NULL AND i2.order_datetime IS NOT NULL AND i2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND i2.product_collection = 'Dog treats') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Cat Snack Buyers
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT i2.customer_id 
FROM unified_itemized_transactions AS i2 
WHERE i2.customer_id IS NOT NULL AND i2.order_datetime IS NOT NULL AND i2.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND i2.order_datetime >= TIMESTAMP '2023-12-01 00:00:00' AND i2.product_collection = 'Cat snacks' GROUP BY i2.customer_id 
HAVING count(DISTINCT i2.order_id) IS NOT NULL AND count(DISTINCT i2.order_id) >= 2);

-- segment: Cart Abandoners - Last Hour
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT k2.customer_id 
FROM checkouts AS k2 
WHERE k2.customer_id IS NOT NULL AND (k2.completed IS NULL OR k2.completed = false) AND k2.started_at IS NOT NULL AND k2.started_at < TIMESTAMP '2024-12-01 00:00:00' AND k2.started_at >= TIMESTAMP '2024-11-30 23:00:00') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Cart Abandoners - 12 Hours
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT k2.customer_id 
FROM checkouts AS k2 
WHERE k2.customer_id IS NOT NULL AND (k2.completed IS NULL OR k2.completed = false) AND k2.started_at IS NOT NULL AND k2.started_at < TIMESTAMP '2024-12-01 00:00:00' AND k2.started_at >= TIMESTAMP '2024-11-30 12:00:00') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: Cart Abandoners
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT k2.customer_id 
FROM checkouts AS k2 
WHERE k2.customer_id IS NOT NULL AND (k2.completed IS NULL OR k2.completed = false) AND k2.started_at IS NOT NULL AND k2.started_at < TIMESTAMP '2024-12-01 00:00:00' AND k2.started_at >= TIMESTAMP '2024-11-30 00:00:00') AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true;

-- segment: VIP Accessories Fans
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT t2.customer_id 
FROM customer_tags AS t2 
WHERE t2.customer_id IS NOT NULL AND t2.tag = 'VIP') AND c1.customer_id IN (SELECT i3.customer_id 
FROM unified_itemized_transactions AS i3 
WHERE i3.customer_id IS NOT NULL AND i3.order_datetime IS NOT NULL AND i3.order_datetime < TIMESTAMP '2024-12-01 00:00:00' AND i3.product_category = 'Accessories' GROUP BY i3.customer_id 
HAVING count(DISTINCT i3.order_id) IS NOT NULL AND count(DISTINCT i3.order_id) >= 3);

-- segment: Staff and Friends
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT t2.customer_id 
FROM customer_tags AS t2 
WHERE t2.customer_id IS NOT NULL AND t2.tag IN ('Employee', 'Friends & Family'));

-- segment: SMS Reachable
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.sms_opt_in IS NOT NULL AND c1.sms_opt_in = true AND c1.contactable_phone IS NOT NULL AND c1.contactable_phone = true AND (c1.customer_id NOT IN (SELECT DISTINCT c2.customer_id AS customer_id 
FROM customer_360 AS c2 
WHERE c2.customer_id IS NOT NULL AND c2.customer_id IN (SELECT t3.customer_id 
FROM customer_tags AS t3 
WHERE t3.customer_id IS NOT NULL AND t3.tag IN ('Employee', 'Friends & Family'))));

-- segment: In-store Customers - Portland
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.contactable_phone IS NOT NULL AND c1.contactable_phone = true AND c1.postal IS NOT NULL AND c1.postal IN ('97201', '97202', '97205', '97209');

-- segment: In-store Customers - Seattle
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.contactable_phone IS NOT NULL AND c1.contactable_phone = true AND c1.postal IS NOT NULL AND c1.postal IN ('98101', '98102', '98104', '98122');

-- segment: In-store Customers
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND (c1.customer_id IN (SELECT DISTINCT c2.customer_id AS customer_id 
FROM customer_360 AS c2 
WHERE c2.customer_id IS NOT NULL AND c2.contactable_phone IS NOT NULL AND c2.contactable_phone = true AND c2.postal IS NOT NULL AND c2.postal IN ('97201', '97202', '97205', '97209')) OR c1.customer_id IN (SELECT DISTINCT c3.customer_id AS customer_id 
FROM customer_360 AS c3 
WHERE c3.customer_id IS NOT NULL AND c3.contactable_phone IS NOT NULL AND c3.contactable_phone = true AND c3.postal IS NOT NULL AND c3.postal IN ('98101', '98102', '98104', '98122')));

-- segment: Near Pearl Store
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.contactable_phone IS NOT NULL AND c1.contactable_phone = true AND (EXISTS (SELECT 1 AS anon_1 
FROM stores AS s2 
WHERE s2.store_id = 'PDX-01' AND s2.latitude IS NOT NULL AND s2.longitude IS NOT NULL AND c1.latitude IS NOT NULL AND c1.longitude IS NOT NULL AND 12742.0176 * asin(sqrt(CASE WHEN (sin(radians(s2.latitude - c1.latitude) / CAST(2.0 AS FLOAT)) * sin(radians(s2.latitude - c1.latitude) / CAST(2.0 AS FLOAT)) + cos(radians(c1.latitude)) * cos(radians(s2.latitude)) * sin(radians(s2.longitude - c1.longitude) / CAST(2.0 AS FLOAT)) * sin(radians(s2.longitude - c1.longitude) / CAST(2.0 AS FLOAT)) > 1) THEN 1.0 ELSE sin(radians(s2.latitude - c1.latitude) / CAST(2.0 AS FLOAT)) * sin(radians(s2.latitude - c1.latitude) / CAST(2.0 AS FLOAT)) + cos(radians(c1.latitude)) * cos(radians(s2.latitude)) * sin(radians(s2.longitude - c1.longitude) / CAST(2.0 AS FLOAT)) * sin(radians(s2.longitude - c1.longitude) / CAST(2.0 AS FLOAT)) END)) <= 16.09344));

-- segment: Top Average Order
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT r4.customer_id 
FROM (SELECT v4.customer_id AS customer_id, v4.ranked_value AS ranked_value, rank() OVER (ORDER BY v4.ranked_key0 DESC, v4.ranked_key1 DESC) AS ranked_position, count(*) OVER () AS ranked_population 
FROM (SELECT p2.customer_id AS customer_id, d3.revenue / CAST(d3.orders AS NUMERIC) AS ranked_value, ((CAST(round(d3.revenue * 1000000) AS BIGINT)) / (CAST(d3.orders AS BIGINT))) AS ranked_key0, (((CAST(round(d3.revenue * 1000000) AS BIGINT) - ((CAST(round(d3.revenue * 1000000) AS BIGINT)) / (CAST(d3.orders AS BIGINT))) * CAST(d3.orders AS BIGINT)) * 1000000000000) / (CAST(d3.orders AS BIGINT))) AS ranked_key1 
FROM customer_360 AS p2 LEFT OUTER JOIN (SELECT o3.customer_id AS customer_id, SUM(o3.order_revenue) AS revenue, count(o3.order_id) AS orders, min(o3.order_datetime) AS first_order, max(o3.order_datetime) AS last_order 
FROM unified_transactions AS o3 
WHERE o3.customer_id IS NOT NULL AND o3.order_datetime IS NOT NULL AND o3.order_datetime < TIMESTAMP '2024-12-01 00:00:00' GROUP BY o3.customer_id) AS d3 ON d3.customer_id = p2.customer_id 
WHERE p2.customer_id IS NOT NULL) AS v4 
WHERE v4.ranked_value IS NOT NULL) AS r4 
WHERE (CAST(r4.ranked_position AS BIGINT) - 1) * 100 < 10 * CAST(r4.ranked_population AS BIGINT));

-- segment: Lapsed Longest
SELECT DISTINCT c1.customer_id AS customer_id 
FROM customer_360 AS c1 
WHERE c1.customer_id IS NOT NULL AND c1.customer_id IN (SELECT r4.customer_id 
FROM (SELECT v4.customer_id AS customer_id, v4.ranked_value AS ranked_value, rank() OVER (ORDER BY v4.ranked_value DESC) AS ranked_position, count(*) OVER () AS ranked_population 
FROM (SELECT p2.customer_id AS customer_id, (CAST(DATE '2024-11-30' AS DATE) - CAST(d3.last_order AS DATE)) AS ranked_value 
FROM customer_360 AS p2 LEFT OUTER JOIN (SELECT o3.customer_id AS customer_id, SUM(o3.order_revenue) AS revenue, count(o3.order_id) AS orders, min(o3.order_datetime) AS first_order, max(o3.order_datetime) AS last_order 
FROM unified_transactions AS o3 
WHERE o3.customer_id IS NOT NULL AND o3.order_datetime IS NOT NULL AND o3.order_datetime < TIMESTAMP '2024-12-01 00:00:00' GROUP BY o3.customer_id) AS d3 ON d3.customer_id = p2.customer_id 
WHERE p2.customer_id IS NOT NULL) AS v4 
WHERE v4.ranked_value IS NOT NULL) AS r4 
WHERE (CAST(r4.ranked_position AS BIGINT) - 1) * 100 < 25 * CAST(r4.ranked_population AS BIGINT));
