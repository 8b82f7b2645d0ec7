//! The `products` family: units, revenue (reporting currency), cost and gross margin per
//! product per window, and the top-N products per category. Stage 1 keys results by
//! category (`category=books`); one result holds every product of the category sold in
//! the window, so its partial row carries `<product_id>/<value>` entries. Stage 2 merges
//! the partials of all tasks into exact per-product totals and only then ranks them
//! ([`ProductsAgg::write_global_rows`]): a per-task top-N would be wrong. The global rows
//! are one per product, `category=books/product=sku-000042`, each re-emitted with every
//! revision of its category, carrying `rank` (1 = best: revenue, then units, descending,
//! then product id) when within the top N and no `rank` otherwise — so a product that
//! drops out of the top N loses its rank in the same revision, and no stale rank remains.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};

use super::aggregate::Aggregate;

/// One product's totals in one window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductTotals {
    pub units: u64,
    /// Net line revenue in the reporting currency.
    pub revenue: Decimal,
    /// Catalog cost × units of the units whose product was in the catalog.
    pub cost: Decimal,
    /// Units sold while the product was missing from the catalog.
    pub unknown_units: u64,
}

impl ProductTotals {
    fn merge(&mut self, o: &Self) {
        self.units += o.units;
        self.revenue = self.revenue.saturating_add(o.revenue);
        self.cost = self.cost.saturating_add(o.cost);
        self.unknown_units += o.unknown_units;
    }

    /// Adds one order line: `cost` is the line's catalog cost, `None` for an unknown
    /// product.
    #[inline]
    pub fn add_line(&mut self, units: u64, revenue: Decimal, cost: Option<Decimal>) {
        self.units += units;
        self.revenue = self.revenue.saturating_add(revenue);
        match cost {
            Some(c) => self.cost = self.cost.saturating_add(c),
            None => self.unknown_units += units,
        }
    }

    const FIELDS: [&'static str; 4] = ["units", "revenue", "cost", "unknown_units"];

    fn write(&self, out: &mut BTreeMap<String, Decimal>, prefix: &str) {
        let values = [
            self.units.into(),
            self.revenue,
            self.cost,
            self.unknown_units.into(),
        ];
        for (f, v) in Self::FIELDS.iter().zip(values) {
            out.insert(format!("{prefix}{f}"), v);
        }
    }
}

/// Product id → totals, hashed: a line finds its product with one hash and one string
/// compare instead of a tree walk of compares.
pub type ProductMap = HashMap<Box<str>, ProductTotals, ahash::RandomState>;

/// The products of one category in one window, by product id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductsAgg {
    #[serde(serialize_with = "by_product_id")]
    pub products: ProductMap,
}

/// The serde form of the products: a map in product-id order, as the `BTreeMap` this
/// replaced wrote it, so the changelog value of a result does not depend on hashing.
fn by_product_id<S: Serializer>(products: &ProductMap, s: S) -> Result<S::Ok, S::Error> {
    let mut sorted: Vec<_> = products.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    s.collect_map(sorted)
}

impl ProductsAgg {
    /// The totals of `product`, created empty on first use.
    #[inline]
    pub fn product(&mut self, product: &str) -> &mut ProductTotals {
        if !self.products.contains_key(product) {
            self.products
                .insert(product.into(), ProductTotals::default());
        }
        self.products
            .get_mut(product)
            .expect("inserted above when missing")
    }

    /// Adds one order line of `product` (see [`ProductTotals::add_line`]), with a single
    /// map lookup when the product is already there (the common case).
    #[inline]
    pub fn add_line(&mut self, product: &str, units: u64, revenue: Decimal, cost: Option<Decimal>) {
        if let Some(t) = self.products.get_mut(product) {
            t.add_line(units, revenue, cost);
        } else {
            let mut t = ProductTotals::default();
            t.add_line(units, revenue, cost);
            self.products.insert(product.into(), t);
        }
    }

    /// The products in rank order: revenue, then units, descending, then product id.
    pub fn ranked(&self) -> Vec<(&str, &ProductTotals)> {
        let mut v: Vec<_> = self.products.iter().map(|(k, t)| (&**k, t)).collect();
        v.sort_by(|a, b| {
            (b.1.revenue, b.1.units)
                .cmp(&(a.1.revenue, a.1.units))
                .then_with(|| a.0.cmp(b.0))
        });
        v
    }
}

impl Aggregate for ProductsAgg {
    fn merge(&mut self, o: &Self) {
        for (id, t) in &o.products {
            self.product(id).merge(t);
        }
    }

    /// The partial form: `<product_id>/<field>` per product.
    fn write_values(&self, out: &mut BTreeMap<String, Decimal>) {
        for (id, t) in &self.products {
            t.write(out, &format!("{id}/"));
        }
    }

    fn from_values(v: &BTreeMap<String, Decimal>) -> Option<Self> {
        let mut agg = ProductsAgg::default();
        for (k, value) in v {
            let (id, field) = k.rsplit_once('/')?;
            let t = agg.product(id);
            let n = || u64::try_from(*value).ok();
            match field {
                "units" => t.units = n()?,
                "revenue" => t.revenue = *value,
                "cost" => t.cost = *value,
                "unknown_units" => t.unknown_units = n()?,
                _ => return None,
            }
        }
        Some(agg)
    }

    /// One row per product (see the module doc), ranked within the category.
    fn write_global_rows(
        &self,
        dimension: &str,
        top_n: usize,
        out: &mut dyn FnMut(String, BTreeMap<String, Decimal>),
    ) {
        for (i, (id, t)) in self.ranked().into_iter().enumerate() {
            let mut values = BTreeMap::new();
            t.write(&mut values, "");
            if t.unknown_units == 0 {
                values.insert("gross_margin".into(), t.revenue.saturating_sub(t.cost));
            }
            if i < top_n {
                values.insert("rank".into(), Decimal::from(i + 1));
            }
            out(format!("{dimension}/product={id}"), values);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(lines: &[(&str, u64, i64, Option<i64>)]) -> ProductsAgg {
        let mut a = ProductsAgg::default();
        for &(id, units, revenue, cost) in lines {
            a.add_line(id, units, Decimal::from(revenue), cost.map(Decimal::from));
        }
        a
    }

    #[test]
    fn merge_is_associative_and_round_trips_through_values() {
        let a = agg(&[("p1", 2, 20, Some(10)), ("p2", 1, 5, None)]);
        let b = agg(&[("p1", 1, 10, Some(5))]);
        let c = agg(&[("p3", 4, 40, Some(1)), ("p2", 1, 5, Some(2))]);
        let mut ab_c = a.clone();
        ab_c.merge(&b);
        ab_c.merge(&c);
        let mut bc = b.clone();
        bc.merge(&c);
        let mut a_bc = a.clone();
        a_bc.merge(&bc);
        assert_eq!(ab_c, a_bc);
        assert_eq!(ab_c.products["p1"].units, 3);
        assert_eq!(ab_c.products["p2"].unknown_units, 1);
        let mut v = BTreeMap::new();
        ab_c.write_values(&mut v);
        assert_eq!(ProductsAgg::from_values(&v), Some(ab_c));
        v.insert("p1/bogus".into(), Decimal::ONE);
        assert_eq!(ProductsAgg::from_values(&v), None);
    }

    #[test]
    fn the_serde_form_is_in_product_id_order_and_round_trips() {
        let ids: Vec<String> = (0..40).map(|i| format!("p-{}", (i * 17) % 40)).collect();
        let mut a = ProductsAgg::default();
        for (n, id) in ids.iter().enumerate() {
            a.add_line(id, n as u64 + 1, Decimal::from(n as i64), None);
        }
        let json = serde_json::to_string(&a).unwrap();
        // What the former BTreeMap field wrote for the same products.
        let tree: BTreeMap<&str, &ProductTotals> =
            a.products.iter().map(|(k, v)| (&**k, v)).collect();
        let want = format!("{{\"products\":{}}}", serde_json::to_string(&tree).unwrap());
        assert_eq!(json, want);
        let back: ProductsAgg = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn global_rows_rank_the_merged_totals() {
        // Per task, p2 leads; merged, p1 does (a per-task top-1 would pick p2).
        let mut merged = agg(&[("p1", 1, 30, Some(1)), ("p2", 1, 40, None)]);
        merged.merge(&agg(&[("p1", 1, 30, Some(1)), ("p3", 9, 40, Some(1))]));
        let mut rows = Vec::new();
        merged.write_global_rows("category=c", 2, &mut |d, v| rows.push((d, v)));
        let rank = |d: &str| {
            rows.iter()
                .find(|(k, _)| k == d)
                .and_then(|(_, v)| v.get("rank").copied())
        };
        assert_eq!(rank("category=c/product=p1"), Some(Decimal::from(1)));
        assert_eq!(rank("category=c/product=p3"), Some(Decimal::from(2)));
        assert_eq!(rank("category=c/product=p2"), None, "out of the top 2");
        let p2 = &rows.iter().find(|(k, _)| k.ends_with("p2")).unwrap().1;
        assert!(!p2.contains_key("gross_margin"), "unknown cost: no margin");
        let p1 = &rows.iter().find(|(k, _)| k.ends_with("p1")).unwrap().1;
        assert_eq!(p1["gross_margin"], Decimal::from(58));
    }
}
