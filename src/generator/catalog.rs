//! The product catalog: products across categories with brands, log-normal list prices,
//! costs, stock levels and reorder points, a Zipf-like popularity so a few products sell
//! most, per-category samplers for browsing within a category, and the inventory that
//! purchases draw down (crossing the reorder point publishes an updated product, and a
//! later restock publishes another). A handful of e-gift cards exist for card testing.

use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::LogNormal;

use super::ids::money;
use crate::model::time::Millis;
use crate::model::Product;

struct CategorySpec {
    name: &'static str,
    brands: &'static [&'static str],
    nouns: &'static [&'static str],
    /// Median list price in dollars and log-normal sigma.
    median: f64,
    sigma: f64,
    /// Largest quantity a shopper usually buys at once.
    max_qty: u8,
}

const CATEGORIES: &[CategorySpec] = &[
    CategorySpec {
        name: "electronics",
        brands: &["Voltix", "Nexon", "Aurora", "Pulse"],
        nouns: &[
            "Headphones",
            "Smartwatch",
            "Speaker",
            "Tablet",
            "Charger",
            "Monitor",
            "Keyboard",
        ],
        median: 79.0,
        sigma: 0.9,
        max_qty: 2,
    },
    CategorySpec {
        name: "books",
        brands: &["Penguin House", "Harbor Press", "Lumen Books"],
        nouns: &[
            "Novel",
            "Cookbook",
            "Biography",
            "Travel Guide",
            "Atlas",
            "Poetry",
        ],
        median: 16.0,
        sigma: 0.4,
        max_qty: 3,
    },
    CategorySpec {
        name: "clothing",
        brands: &["Northwind", "Urbanite", "Terra", "Fjell"],
        nouns: &[
            "T-Shirt", "Jeans", "Jacket", "Sneakers", "Hoodie", "Dress", "Scarf",
        ],
        median: 38.0,
        sigma: 0.6,
        max_qty: 3,
    },
    CategorySpec {
        name: "home",
        brands: &["Casa", "Hearth & Co", "Nordholm"],
        nouns: &[
            "Lamp",
            "Blender",
            "Cookware Set",
            "Pillow",
            "Coffee Maker",
            "Rug",
        ],
        median: 45.0,
        sigma: 0.7,
        max_qty: 2,
    },
    CategorySpec {
        name: "beauty",
        brands: &["Luxe", "Verde", "Petal"],
        nouns: &["Serum", "Moisturizer", "Lipstick", "Shampoo", "Perfume"],
        median: 22.0,
        sigma: 0.5,
        max_qty: 3,
    },
    CategorySpec {
        name: "sports",
        brands: &["Peak", "Stride", "Apex"],
        nouns: &[
            "Yoga Mat",
            "Dumbbells",
            "Running Shoes",
            "Tent",
            "Water Bottle",
            "Bike Helmet",
        ],
        median: 40.0,
        sigma: 0.8,
        max_qty: 2,
    },
    CategorySpec {
        name: "toys",
        brands: &["Playwise", "Brickly", "Tiny Titans"],
        nouns: &[
            "Puzzle",
            "Building Set",
            "Plush Bear",
            "Board Game",
            "RC Car",
        ],
        median: 25.0,
        sigma: 0.6,
        max_qty: 3,
    },
    CategorySpec {
        name: "grocery",
        brands: &["Farmstead", "Good Pantry"],
        nouns: &[
            "Coffee Beans",
            "Olive Oil",
            "Granola",
            "Tea Sampler",
            "Chocolate",
        ],
        median: 11.0,
        sigma: 0.4,
        max_qty: 6,
    },
];

const ADJECTIVES: &[&str] = &[
    "Classic",
    "Pro",
    "Ultra",
    "Mini",
    "Eco",
    "Deluxe",
    "Essential",
    "Smart",
    "Premium",
    "Lite",
];

/// The category of the e-gift cards used by card testing.
pub const GIFT_CARD_CATEGORY: &str = "gift_cards";
const GIFT_CARD_CENTS: &[i64] = &[100, 200, 500];

/// One product with the numbers the simulation needs alongside the published record.
#[derive(Debug, Clone)]
pub struct Item {
    pub product: Product,
    pub price_cents: i64,
    pub category: usize,
    pub initial_stock: i64,
    /// A low-stock update was published and a restock is pending.
    pub restock_pending: bool,
}

/// The catalog and its samplers.
pub struct Catalog {
    pub items: Vec<Item>,
    popular: WeightedIndex<f64>,
    by_category: Vec<(Vec<u32>, WeightedIndex<f64>)>,
    gift_cards: Vec<u32>,
}

impl Catalog {
    /// `n` regular products (at least one per category) plus the gift cards.
    pub fn generate(rng: &mut impl Rng, n: usize, at: Millis) -> Catalog {
        let n = n.max(CATEGORIES.len());
        let price_dists: Vec<LogNormal<f64>> = CATEGORIES
            .iter()
            .map(|c| LogNormal::new(c.median.ln(), c.sigma).expect("valid log-normal"))
            .collect();
        let mut items = Vec::with_capacity(n + GIFT_CARD_CENTS.len());
        for i in 0..n {
            let cat = if i < CATEGORIES.len() {
                i
            } else {
                rng.gen_range(0..CATEGORIES.len())
            };
            let spec = &CATEGORIES[cat];
            let dollars = price_dists[cat].sample(rng).clamp(2.0, 2500.0);
            let price_cents = dollars.floor() as i64 * 100 + 99;
            let cost_cents = (price_cents as f64 * rng.gen_range(0.35..0.75)).round() as i64;
            let reorder = rng.gen_range(5..30);
            // A tenth of the catalog starts close to its reorder point.
            let stock = if rng.gen_bool(0.1) {
                reorder + rng.gen_range(1..25)
            } else {
                rng.gen_range(40..600)
            };
            let name = format!(
                "{} {} {}",
                spec.brands.choose(rng).expect("brands"),
                ADJECTIVES.choose(rng).expect("adjectives"),
                spec.nouns.choose(rng).expect("nouns")
            );
            let brand = name_brand(&name, spec);
            items.push(Item {
                product: product(
                    i,
                    name,
                    spec.name,
                    brand,
                    price_cents,
                    cost_cents,
                    stock,
                    Some(reorder),
                    at,
                ),
                price_cents,
                category: cat,
                initial_stock: stock,
                restock_pending: false,
            });
        }
        let mut gift_cards = Vec::new();
        for (j, cents) in GIFT_CARD_CENTS.iter().enumerate() {
            gift_cards.push(items.len() as u32);
            let name = format!("E-Gift Card {}", money(*cents));
            items.push(Item {
                product: product(
                    n + j,
                    name,
                    GIFT_CARD_CATEGORY,
                    "Shop",
                    *cents,
                    *cents,
                    1_000_000,
                    None,
                    at,
                ),
                price_cents: *cents,
                category: usize::MAX,
                initial_stock: 1_000_000,
                restock_pending: false,
            });
        }
        // Zipf-like popularity over a shuffled order of the regular products.
        let mut rank: Vec<usize> = (0..n).collect();
        rank.shuffle(rng);
        let mut weight = vec![0.0; n];
        for (r, &i) in rank.iter().enumerate() {
            weight[i] = 1.0 / ((r + 1) as f64).powf(1.05);
        }
        let popular = WeightedIndex::new(&weight).expect("positive weights");
        let by_category = (0..CATEGORIES.len())
            .map(|c| {
                let idx: Vec<u32> = (0..n as u32)
                    .filter(|&i| items[i as usize].category == c)
                    .collect();
                let w: Vec<f64> = idx.iter().map(|&i| weight[i as usize]).collect();
                (
                    idx,
                    WeightedIndex::new(&w).expect("every category has a product"),
                )
            })
            .collect();
        Catalog {
            items,
            popular,
            by_category,
            gift_cards,
        }
    }

    /// A product by overall popularity.
    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        self.popular.sample(rng) as u32
    }

    /// A product from the same category as `like`, by popularity.
    pub fn sample_like(&self, rng: &mut impl Rng, like: u32) -> u32 {
        let cat = self.items[like as usize].category;
        match self.by_category.get(cat) {
            Some((idx, w)) => idx[w.sample(rng)],
            None => self.sample(rng),
        }
    }

    /// A product picked for a shopper with the given price bias (-1 cheap, 0 any, 1 dear).
    pub fn sample_biased(&self, rng: &mut impl Rng, bias: i8, like: Option<u32>) -> u32 {
        let a = self.pick(rng, like);
        if bias == 0 {
            return a;
        }
        let b = self.pick(rng, like);
        let (pa, pb) = (
            self.items[a as usize].price_cents,
            self.items[b as usize].price_cents,
        );
        if (pa > pb) == (bias > 0) {
            a
        } else {
            b
        }
    }

    fn pick(&self, rng: &mut impl Rng, like: Option<u32>) -> u32 {
        match like {
            Some(l) if rng.gen_bool(0.6) => self.sample_like(rng, l),
            _ => self.sample(rng),
        }
    }

    /// The usual largest quantity for a product.
    pub fn max_qty(&self, idx: u32) -> u8 {
        CATEGORIES
            .get(self.items[idx as usize].category)
            .map_or(1, |c| c.max_qty)
    }

    /// The search term a shopper would type to find a product.
    pub fn search_term(&self, idx: u32) -> String {
        let p = &self.items[idx as usize].product;
        let rest = p
            .name
            .strip_prefix(p.brand.as_str())
            .unwrap_or(&p.name)
            .trim_start();
        let noun = rest.split_once(' ').map_or(rest, |(_adjective, noun)| noun);
        noun.to_lowercase()
    }

    pub fn category_name(&self, idx: u32) -> &str {
        &self.items[idx as usize].product.category
    }

    pub fn gift_cards(&self) -> &[u32] {
        &self.gift_cards
    }

    /// The most expensive regular products (for amount outliers).
    pub fn priciest(&self, k: usize) -> Vec<u32> {
        let mut idx: Vec<u32> = (0..self.items.len() as u32)
            .filter(|&i| self.items[i as usize].category != usize::MAX)
            .collect();
        idx.sort_by_key(|&i| std::cmp::Reverse(self.items[i as usize].price_cents));
        idx.truncate(k);
        idx
    }

    /// Takes `qty` units out of stock; returns true when this crossed the reorder point
    /// (the caller then publishes the product and schedules a restock).
    pub fn take(&mut self, idx: u32, qty: i64, at: Millis) -> bool {
        let item = &mut self.items[idx as usize];
        let before = item.product.inventory_count;
        item.product.inventory_count = (before - qty).max(0);
        item.product.updated_at = at;
        let reorder = item.product.reorder_point.unwrap_or(0);
        if !item.restock_pending && item.product.inventory_count <= reorder {
            item.restock_pending = true;
            return true;
        }
        false
    }

    /// Refills a product to its initial stock.
    pub fn restock(&mut self, idx: u32, at: Millis) {
        let item = &mut self.items[idx as usize];
        item.product.inventory_count += item.initial_stock;
        item.product.updated_at = at;
        item.restock_pending = false;
    }
}

fn name_brand(name: &str, spec: &CategorySpec) -> &'static str {
    spec.brands
        .iter()
        .find(|b| name.starts_with(*b))
        .copied()
        .unwrap_or(spec.brands[0])
}

#[allow(clippy::too_many_arguments)]
fn product(
    i: usize,
    name: String,
    category: &str,
    brand: &str,
    price_cents: i64,
    cost_cents: i64,
    stock: i64,
    reorder_point: Option<i64>,
    at: Millis,
) -> Product {
    Product {
        product_id: format!("sku-{:06}", i + 1),
        name,
        category: category.to_string(),
        brand: brand.to_string(),
        price: money(price_cents),
        cost: money(cost_cents),
        inventory_count: stock,
        reorder_point,
        updated_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::ids::{rng_for, Stream};

    #[test]
    fn catalog_is_consistent() {
        let mut rng = rng_for(1, Stream::World);
        let c = Catalog::generate(&mut rng, 200, 0);
        assert_eq!(c.items.len(), 203);
        for it in &c.items {
            let p = &it.product;
            assert!(p.price > rust_decimal::Decimal::ZERO);
            assert!(p.cost <= p.price, "{p:?}");
            assert!(p.name.starts_with(&p.brand) || p.category == GIFT_CARD_CATEGORY);
        }
        let mut counts = vec![0u32; c.items.len()];
        for _ in 0..20_000 {
            counts[c.sample(&mut rng) as usize] += 1;
        }
        let max = *counts.iter().max().unwrap();
        assert!(
            max > 1000,
            "popularity should be skewed, top product sold {max}"
        );
        for &g in c.gift_cards() {
            assert_eq!(counts[g as usize], 0, "gift cards are not browsed");
        }
    }
}
