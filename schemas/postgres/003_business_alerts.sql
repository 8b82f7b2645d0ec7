-- Business threshold alerts from shop.alerts.business, one row per alert_id (the latest
-- record of an id wins, as on the topic). kpi_alerts, a KPI-row table the alerts were
-- first planned into, never held data: alerts are records of their own. Nor did
-- kpi_customers: customer RFM is the compacted shop.customers.rfm and dim_customers.
CREATE TABLE IF NOT EXISTS business_alerts (
    alert_id      text PRIMARY KEY,
    kind          text NOT NULL,
    dimension     text NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    value         numeric NOT NULL,
    threshold     numeric NOT NULL,
    baseline      numeric,
    detail        text NOT NULL
);
CREATE INDEX IF NOT EXISTS business_alerts_window ON business_alerts (window_end);
CREATE INDEX IF NOT EXISTS business_alerts_kind ON business_alerts (kind, window_end);
DROP TABLE IF EXISTS kpi_alerts;
DROP TABLE IF EXISTS kpi_customers;
