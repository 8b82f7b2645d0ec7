//! Topic names and their TopicNameStrategy subjects (`<topic>-value`). Every topic carries
//! one record type; the KPI families each get their own `shop.kpi.<family>` topic, all with
//! the `KpiRow` schema, so a dashboard or sink can subscribe to just the families it shows.

pub const TRANSACTIONS: &str = "shop.transactions";
pub const EVENTS: &str = "shop.events";
pub const PRODUCTS: &str = "shop.products";
pub const ORDERS_ENRICHED: &str = "shop.orders.enriched";
pub const FRAUD_ALERTS: &str = "shop.fraud.alerts";
pub const DLQ: &str = "shop.dlq";
pub const LATE: &str = "shop.late";
pub const CUSTOMERS_RFM: &str = "shop.customers.rfm";
/// Business threshold alerts (revenue drop, failed-payment rate, low stock).
pub const BUSINESS_ALERTS: &str = "shop.alerts.business";
/// Prefix of the KPI topics: `shop.kpi.<family>`.
pub const KPI_PREFIX: &str = "shop.kpi.";

/// KPI families (the `kpi` field of `KpiRow`) and what each topic carries.
pub const KPI_FAMILIES: &[(&str, &str)] = &[
    (
        "revenue",
        "revenue, orders, items, average order value, unique customers by category and overall",
    ),
    (
        "products",
        "units and revenue per product (top-N per category)",
    ),
    ("hourly", "orders per hour"),
    ("geo", "sales by country and state"),
    ("payments", "payment-method mix"),
    ("funnel", "funnel conversion and cart abandonment"),
    ("sessions", "active users and sessions"),
    ("activity", "active customers and events per window"),
    ("quality", "data-quality score per window"),
];

/// The topic of a KPI family, e.g. `shop.kpi.revenue`.
pub fn kpi_topic(family: &str) -> String {
    format!("{KPI_PREFIX}{family}")
}

/// The TopicNameStrategy value subject of a topic.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// Every topic with the schema file (under `schemas/avro/`) of its values.
pub fn topic_schemas() -> Vec<(String, &'static str)> {
    let fixed = [
        (TRANSACTIONS, "transaction.avsc"),
        (EVENTS, "user_event.avsc"),
        (PRODUCTS, "product.avsc"),
        (ORDERS_ENRICHED, "enriched_order.avsc"),
        (FRAUD_ALERTS, "fraud_alert.avsc"),
        (DLQ, "dlq_record.avsc"),
        (LATE, "late_record.avsc"),
        (CUSTOMERS_RFM, "customer_rfm.avsc"),
        (BUSINESS_ALERTS, "business_alert.avsc"),
    ];
    fixed
        .iter()
        .map(|(t, f)| (t.to_string(), *f))
        .chain(
            KPI_FAMILIES
                .iter()
                .map(|(family, _)| (kpi_topic(family), "kpi_row.avsc")),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_topic_name_strategy() {
        assert_eq!(value_subject(TRANSACTIONS), "shop.transactions-value");
        assert_eq!(kpi_topic("revenue"), "shop.kpi.revenue");
        let all = topic_schemas();
        assert_eq!(all.len(), 9 + KPI_FAMILIES.len());
        for (_, file) in all {
            assert!(crate::codec::schemas::by_file(file).is_some(), "{file}");
        }
    }
}
