//! Enrichment of accepted transactions with the catalog: each line item gets the product's
//! name, brand and unit cost, or is marked unknown (kept and counted, never dropped).

use crate::model::{EnrichedItem, EnrichedOrder, SourceCoord, Transaction};

use super::catalog::Catalog;

/// Joins `t` with the catalog; returns the order and how many items were unknown.
pub fn enrich(t: Transaction, source: SourceCoord, catalog: &Catalog) -> (EnrichedOrder, usize) {
    let mut unknown = 0;
    let items = t
        .items
        .iter()
        .map(|i| match catalog.get(&i.product_id) {
            Some(p) => EnrichedItem {
                product_id: i.product_id.clone(),
                product_name: Some(p.name),
                brand: Some(p.brand),
                unit_cost: Some(p.cost),
                known: true,
            },
            None => {
                unknown += 1;
                EnrichedItem {
                    product_id: i.product_id.clone(),
                    product_name: None,
                    brand: None,
                    unit_cost: None,
                    known: false,
                }
            }
        })
        .collect();
    let order = EnrichedOrder {
        order: t,
        items,
        // Fraud scoring (issue 5) fills these; until then every order scores 0.
        fraud_score: 0.0,
        fraud_reasons: Vec::new(),
        source,
    };
    (order, unknown)
}
