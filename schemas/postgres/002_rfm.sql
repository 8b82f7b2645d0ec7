-- RFM profiles from shop.customers.rfm: the latest revision per customer wins. The
-- fact-derived order_count / lifetime_value stay as they are (every order, amounts in
-- the order currency); the rfm_* columns are the streaming RFM view (completed orders,
-- money in the reporting currency rfm_currency, scores measured at rfm_as_of).
ALTER TABLE dim_customers
    ADD COLUMN IF NOT EXISTS rfm_revision       bigint,
    ADD COLUMN IF NOT EXISTS rfm_order_count    bigint,
    ADD COLUMN IF NOT EXISTS rfm_lifetime_value numeric(18,2),
    ADD COLUMN IF NOT EXISTS rfm_currency       text,
    ADD COLUMN IF NOT EXISTS rfm_first_order_at timestamptz,
    ADD COLUMN IF NOT EXISTS rfm_last_order_at  timestamptz,
    ADD COLUMN IF NOT EXISTS rfm_as_of          timestamptz,
    ADD COLUMN IF NOT EXISTS rfm_recency_days   bigint;
CREATE INDEX IF NOT EXISTS dim_customers_rfm_segment ON dim_customers (rfm_segment);
