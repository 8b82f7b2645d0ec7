-- shopstream sink schema, version 1. Applied by the sink at start (see src/sink/migrate.rs).
-- Every table is keyed on a natural key so replays and redeliveries upsert idempotently.

-- Offsets of the sink's consumer, written in the same transaction as the rows they cover.
CREATE TABLE IF NOT EXISTS sink_offsets (
    consumer_group   text    NOT NULL,
    topic            text    NOT NULL,
    partition        integer NOT NULL,
    next_offset      bigint  NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

CREATE TABLE IF NOT EXISTS fact_orders (
    transaction_id   text PRIMARY KEY,
    customer_id      text NOT NULL,
    session_id       text NOT NULL,
    event_time       timestamptz NOT NULL,
    status           text NOT NULL,
    currency         char(3) NOT NULL,
    amount           numeric(18,2) NOT NULL,
    payment_method   text NOT NULL,
    item_count       integer NOT NULL,
    units            integer NOT NULL,
    country          text NOT NULL,
    state            text,
    city             text,
    lat              double precision,
    lon              double precision,
    channel          text NOT NULL,
    device_type      text NOT NULL,
    ip_address       text NOT NULL,
    fraud_score      double precision NOT NULL,
    fraud_reasons    text[] NOT NULL,
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS fact_orders_event_time ON fact_orders (event_time);
CREATE INDEX IF NOT EXISTS fact_orders_customer ON fact_orders (customer_id);

CREATE TABLE IF NOT EXISTS fact_order_items (
    transaction_id   text NOT NULL,
    line_no          integer NOT NULL,
    product_id       text NOT NULL,
    category         text NOT NULL,
    quantity         integer NOT NULL,
    unit_price       numeric(18,2) NOT NULL,
    discount         numeric(18,2) NOT NULL,
    product_name     text,
    brand            text,
    unit_cost        numeric(18,2),
    known_product    boolean NOT NULL,
    PRIMARY KEY (transaction_id, line_no)
);

-- Per-customer facts recomputed from fact_orders for the customers each batch touches
-- (idempotent); RFM columns are filled from shop.customers.rfm.
CREATE TABLE IF NOT EXISTS dim_customers (
    customer_id      text PRIMARY KEY,
    first_order_at   timestamptz,
    last_order_at    timestamptz,
    order_count      bigint NOT NULL DEFAULT 0,
    lifetime_value   numeric(18,2) NOT NULL DEFAULT 0,
    rfm_segment      text,
    rfm_recency      smallint,
    rfm_frequency    smallint,
    rfm_monetary     smallint
);

CREATE TABLE IF NOT EXISTS dim_products (
    product_id       text PRIMARY KEY,
    name             text NOT NULL,
    category         text NOT NULL,
    brand            text NOT NULL,
    price            numeric(18,2) NOT NULL,
    cost             numeric(18,2) NOT NULL,
    inventory_count  bigint NOT NULL,
    reorder_point    bigint,
    updated_at       timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS fraud_alerts (
    transaction_id   text PRIMARY KEY,
    customer_id      text NOT NULL,
    event_time       timestamptz NOT NULL,
    amount           numeric(18,2) NOT NULL,
    currency         char(3) NOT NULL,
    score            double precision NOT NULL,
    reasons          text[] NOT NULL,
    features         jsonb NOT NULL,
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS fraud_alerts_event_time ON fraud_alerts (event_time);

CREATE TABLE IF NOT EXISTS dq_rejects (
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    reason           text NOT NULL,
    rule             text NOT NULL,
    detail           text NOT NULL,
    original         bytea NOT NULL,
    original_key     bytea,
    PRIMARY KEY (source_topic, source_partition, source_offset)
);
CREATE INDEX IF NOT EXISTS dq_rejects_reason ON dq_rejects (reason);

CREATE TABLE IF NOT EXISTS late_records (
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    record_id        text NOT NULL,
    customer_id      text NOT NULL,
    event_time       timestamptz NOT NULL,
    watermark        timestamptz NOT NULL,
    lateness_ms      bigint NOT NULL,
    reason           text NOT NULL,
    original         bytea NOT NULL,
    PRIMARY KEY (source_topic, source_partition, source_offset)
);

-- One table per KPI family (the families of shop.kpi.*): the highest revision of each
-- (window, dimension) wins. `metrics` holds the family's named exact values.

CREATE TABLE IF NOT EXISTS kpi_revenue (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);

CREATE TABLE IF NOT EXISTS kpi_products (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);

CREATE TABLE IF NOT EXISTS kpi_hourly (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);

CREATE TABLE IF NOT EXISTS kpi_geo (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);

CREATE TABLE IF NOT EXISTS kpi_payments (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);

CREATE TABLE IF NOT EXISTS kpi_funnel (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);

CREATE TABLE IF NOT EXISTS kpi_sessions (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);

CREATE TABLE IF NOT EXISTS kpi_customers (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);

CREATE TABLE IF NOT EXISTS kpi_quality (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);

CREATE TABLE IF NOT EXISTS kpi_alerts (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);

CREATE TABLE IF NOT EXISTS kpi_activity (
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    dimension        text NOT NULL,
    status           text NOT NULL,
    revision         bigint NOT NULL,
    metrics          jsonb NOT NULL,
    PRIMARY KEY (window_start, window_end, dimension)
);
