//! Enrichment of accepted transactions with the catalog: each line item gets the product's
//! name, brand and unit cost, or is marked unknown (kept and counted, never dropped); the
//! order carries the fraud score and reasons the engine gave the transaction.

use crate::fraud::Verdict;
use crate::model::{EnrichedItem, EnrichedOrder, SourceCoord, Transaction};

use super::catalog::Catalog;

/// Joins `t` (scored `fraud`) with the catalog; returns the order and how many items were
/// unknown.
pub fn enrich(
    t: Transaction,
    fraud: &Verdict,
    source: SourceCoord,
    catalog: &Catalog,
) -> (EnrichedOrder, usize) {
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
        fraud_score: fraud.score,
        fraud_reasons: fraud.reason_strings(),
        source,
    };
    (order, unknown)
}
