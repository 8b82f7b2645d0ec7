//! The product catalog table: the compacted `shop.products` topic materialised in memory
//! (a `DashMap` keyed by product_id, latest `updated_at` wins, tombstones delete), fed by a
//! background thread that reads every partition from the beginning with no consumer group,
//! like a Kafka Streams global table. Processing waits until the table has caught up with
//! the topic's end once, so enrichment at start sees the whole catalog. Product names and
//! brands longer than `quality::size::MAX_CATALOG_TEXT_BYTES` are cut on the way in, which
//! keeps enriched orders within the bound the output size rule relies on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dashmap::DashMap;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tracing::warn;

use crate::codec::InputDecoder;
use crate::model::Product;

/// The shared catalog.
#[derive(Default, Clone)]
pub struct Catalog {
    products: Arc<DashMap<String, Product>>,
    caught_up: Arc<AtomicBool>,
}

impl Catalog {
    pub fn get(&self, product_id: &str) -> Option<Product> {
        self.products.get(product_id).map(|p| p.clone())
    }

    /// The unit cost of `product_id`, without copying the product.
    pub fn cost(&self, product_id: &str) -> Option<rust_decimal::Decimal> {
        self.products.get(product_id).map(|p| p.cost)
    }

    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    pub fn upsert(&self, mut p: Product) {
        let cut = crate::quality::size::bound_catalog_text(&mut p.name);
        if crate::quality::size::bound_catalog_text(&mut p.brand) || cut {
            warn!(product_id = %p.product_id, "catalog name or brand cut to its size bound");
        }
        // One entry guard for the compare and the write: holding a read guard from `get`
        // while inserting into the same shard would deadlock.
        match self.products.entry(p.product_id.clone()) {
            dashmap::Entry::Occupied(mut e) => {
                if e.get().updated_at <= p.updated_at {
                    e.insert(p);
                }
            }
            dashmap::Entry::Vacant(e) => {
                e.insert(p);
            }
        }
    }

    /// Starts the background reader of `topic`; returns once it has caught up with the
    /// topic's end (or after `wait`, with a warning).
    pub fn start(
        base: &ClientConfig,
        topic: &str,
        decoder: Arc<InputDecoder>,
        handle: Handle,
        stop: Arc<AtomicBool>,
        wait: Duration,
    ) -> Result<Catalog> {
        let catalog = Catalog::default();
        let consumer: BaseConsumer = base
            .clone()
            .set("group.id", "shopstream-catalog-reader")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .context("creating the catalog reader")?;
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("metadata of {topic}"))?;
        let mut tpl = TopicPartitionList::new();
        let mut ends = Vec::new();
        for t in md.topics() {
            for p in t.partitions() {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
                let (_, high) =
                    consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
                ends.push((p.id(), high));
            }
        }
        consumer.assign(&tpl)?;
        let c = catalog.clone();
        let topic_name = topic.to_string();
        std::thread::Builder::new()
            .name("catalog".into())
            .spawn(move || {
                let mut remaining = ends;
                remaining.retain(|(_, high)| *high > 0);
                if remaining.is_empty() {
                    c.caught_up.store(true, Ordering::Release);
                }
                while !stop.load(Ordering::Relaxed) {
                    let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                        continue;
                    };
                    let m = match m {
                        Ok(m) => m,
                        Err(e) => {
                            warn!(topic = %topic_name, error = %e, "catalog read error");
                            continue;
                        }
                    };
                    match (m.key(), m.payload()) {
                        (Some(k), None) => {
                            c.products.remove(String::from_utf8_lossy(k).as_ref());
                        }
                        (_, Some(v)) => match handle.block_on(decoder.decode_waiting::<Product>(
                            v,
                            &format!("{topic_name}/{}@{}", m.partition(), m.offset()),
                            &|| stop.load(Ordering::Relaxed),
                        )) {
                            Ok(p) => c.upsert(p),
                            Err(e) => warn!(topic = %topic_name, partition = m.partition(),
                                offset = m.offset(), reason = e.reason(), "skipping undecodable product"),
                        },
                        _ => {}
                    }
                    remaining.retain(|(p, high)| !(*p == m.partition() && m.offset() + 1 >= *high));
                    if remaining.is_empty() {
                        c.caught_up.store(true, Ordering::Release);
                    }
                }
            })?;
        let start = Instant::now();
        while !catalog.caught_up.load(Ordering::Acquire) && start.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !catalog.caught_up.load(Ordering::Acquire) {
            warn!(
                topic,
                "catalog not caught up after {wait:?}; enrichment starts partial"
            );
        }
        Ok(catalog)
    }
}

/// The engine's view of the catalog: unit costs for gross margin and unknown products.
impl crate::engine::ProductCosts for Catalog {
    fn unit_cost(&self, product_id: &str) -> Option<rust_decimal::Decimal> {
        self.cost(product_id)
    }
}

/// The catalog as stage 2 sees it, for `low_stock` alerts. Stage 1 starts the catalog;
/// stage 2 runs in its own thread and may ask before it is there, when it sees no stock.
#[derive(Default, Clone)]
pub struct SharedCatalog(Arc<std::sync::OnceLock<Catalog>>);

impl SharedCatalog {
    /// Makes `catalog` visible (once; later calls are ignored).
    pub fn set(&self, catalog: Catalog) {
        let _ = self.0.set(catalog);
    }
}

impl crate::analytics::alerts::Inventory for SharedCatalog {
    fn stock_level(&self, product_id: &str) -> Option<crate::analytics::alerts::StockLevel> {
        let catalog = self.0.get()?;
        let p = catalog.products.get(product_id)?;
        Some(crate::analytics::alerts::StockLevel {
            category: p.category.clone(),
            inventory_count: p.inventory_count,
            reorder_point: p.reorder_point,
            updated_at: p.updated_at,
        })
    }
}
