//! Fraud episodes: short runs of transactions that follow one of six patterns a fraud
//! scorer should catch — a velocity burst (6–12 purchases within minutes), card testing
//! (8–20 tiny gift-card charges from a new device, mostly declined), impossible travel (a
//! purchase at home, then one thousands of kilometres away within half an hour), an amount
//! outlier (several units of the dearest products), a new device and IP, and a purchase
//! from a high-risk country. Every fraudulent transaction is labelled with its pattern and
//! episode; the one legitimate purchase of an impossible-travel episode is not labelled.

use rand::seq::SliceRandom;
use rand::Rng;

use super::catalog::Catalog;
use super::customers::{self, Customer};
use super::geo::{self, City, HIGH_RISK_CITIES, HOME_CITIES};
use super::ids::{ipv4, uuid};
use super::orders::{self, Context};
use super::record::FraudPattern;
use crate::model::time::Millis;
use crate::model::{Transaction, TxStatus};

/// (pattern, relative frequency, fewest and most fraudulent transactions per episode)
const PATTERNS: &[(FraudPattern, f64, u32, u32)] = &[
    (FraudPattern::VelocityBurst, 0.15, 6, 12),
    (FraudPattern::CardTesting, 0.15, 8, 20),
    (FraudPattern::ImpossibleTravel, 0.2, 1, 1),
    (FraudPattern::AmountOutlier, 0.2, 1, 1),
    (FraudPattern::NewDevice, 0.15, 1, 1),
    (FraudPattern::HighRiskCountry, 0.15, 1, 1),
];

/// Expected number of fraudulent transactions per episode.
pub fn mean_fraud_per_episode() -> f64 {
    let total: f64 = PATTERNS.iter().map(|p| p.1).sum();
    PATTERNS
        .iter()
        .map(|&(_, w, lo, hi)| w / total * f64::from(lo + hi) / 2.0)
        .sum()
}

/// One fraudster's run of transactions against one customer.
#[derive(Debug, Clone)]
pub struct Episode {
    pub id: u64,
    pub pattern: FraudPattern,
    pub customer: u32,
    session_id: String,
    /// (event time, fraudulent?) of each transaction still to come.
    steps: Vec<(Millis, bool)>,
    cursor: usize,
    ctx: Context,
}

/// A transaction an episode produced.
pub struct FraudTx {
    pub tx: Transaction,
    /// None for the legitimate purchase of an impossible-travel episode.
    pub pattern: Option<FraudPattern>,
    pub episode: u64,
}

impl Episode {
    /// Plans episode `id` against customer `idx`, starting at `start`.
    pub fn plan(
        rng: &mut impl Rng,
        id: u64,
        idx: u32,
        customer: &Customer,
        start: Millis,
    ) -> Episode {
        let &(pattern, _, lo, hi) = PATTERNS.choose_weighted(rng, |p| p.1).expect("weights");
        let n = rng.gen_range(lo..=hi);
        let mut steps = Vec::new();
        let mut t = start;
        if pattern == FraudPattern::ImpossibleTravel {
            steps.push((t, false));
            t += rng.gen_range(2..30) * 60_000;
        }
        for i in 0..n {
            if i > 0 {
                t += match pattern {
                    FraudPattern::CardTesting => rng.gen_range(3_000..20_000),
                    _ => rng.gen_range(10_000..60_000),
                };
            }
            steps.push((t, true));
        }
        let ctx = context(rng, pattern, customer);
        Episode {
            id,
            pattern,
            customer: idx,
            session_id: uuid(rng),
            steps,
            cursor: 0,
            ctx,
        }
    }

    pub fn next_at(&self) -> Option<Millis> {
        self.steps.get(self.cursor).map(|s| s.0)
    }

    /// The next transaction of the episode.
    pub fn advance(
        &mut self,
        rng: &mut impl Rng,
        catalog: &Catalog,
        customer: &Customer,
    ) -> Option<FraudTx> {
        let &(at, fraudulent) = self.steps.get(self.cursor)?;
        self.cursor += 1;
        if !fraudulent {
            let items = vec![orders::line(catalog, catalog.sample(rng), 1, 0)];
            let ctx = Context::usual(rng, customer, 0);
            let session = uuid(rng);
            let tx =
                orders::transaction(rng, customer, &session, at, TxStatus::Completed, items, ctx);
            return Some(FraudTx {
                tx,
                pattern: None,
                episode: self.id,
            });
        }
        let (items, status) = self.basket(rng, catalog);
        let tx = orders::transaction(
            rng,
            customer,
            &self.session_id,
            at,
            status,
            items,
            self.ctx.clone(),
        );
        Some(FraudTx {
            tx,
            pattern: Some(self.pattern),
            episode: self.id,
        })
    }

    fn basket(
        &self,
        rng: &mut impl Rng,
        catalog: &Catalog,
    ) -> (Vec<crate::model::LineItem>, TxStatus) {
        match self.pattern {
            FraudPattern::CardTesting => {
                let card = *catalog.gift_cards().choose(rng).expect("gift cards");
                let status = if rng.gen_bool(0.7) {
                    TxStatus::Failed
                } else {
                    TxStatus::Completed
                };
                (vec![orders::line(catalog, card, 1, 0)], status)
            }
            FraudPattern::AmountOutlier => {
                let dear = catalog.priciest(5);
                let p = *dear.choose(rng).expect("products");
                (
                    vec![orders::line(catalog, p, rng.gen_range(3..=6), 0)],
                    TxStatus::Completed,
                )
            }
            _ => {
                let n = rng.gen_range(1..=2);
                let items = (0..n)
                    .map(|_| orders::line(catalog, catalog.sample_biased(rng, 1, None), 1, 0))
                    .collect();
                let status = if rng.gen_bool(0.9) {
                    TxStatus::Completed
                } else {
                    TxStatus::Pending
                };
                (items, status)
            }
        }
    }
}

/// Location, device and IP the fraudster uses.
fn context(rng: &mut impl Rng, pattern: FraudPattern, customer: &Customer) -> Context {
    let usual = Context::usual(rng, customer, 0);
    match pattern {
        FraudPattern::VelocityBurst | FraudPattern::AmountOutlier => usual,
        FraudPattern::CardTesting | FraudPattern::NewDevice => Context {
            device: customers::device(rng),
            ip_address: ipv4(rng, geo::ip_prefixes(customer.home.country)),
            location: usual.location,
        },
        FraudPattern::ImpossibleTravel => {
            let far = far_city(rng, customer.home);
            Context {
                location: geo::location_in(rng, far),
                ip_address: ipv4(rng, geo::ip_prefixes(far.country)),
                device: usual.device,
            }
        }
        FraudPattern::HighRiskCountry => {
            let city = HIGH_RISK_CITIES.choose(rng).expect("cities");
            Context {
                location: geo::location_in(rng, city),
                ip_address: ipv4(rng, geo::ip_prefixes(city.country)),
                device: customers::device(rng),
            }
        }
    }
}

/// A home city at least 3,000 km from `home`.
fn far_city(rng: &mut impl Rng, home: &City) -> &'static City {
    let far: Vec<&'static City> = HOME_CITIES
        .iter()
        .filter(|c| geo::haversine_km(home.lat, home.lon, c.lat, c.lon) > 3_000.0)
        .collect();
    far.choose(rng).expect("some city is far away")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_episode_size() {
        let m = mean_fraud_per_episode();
        assert!((4.0..4.3).contains(&m), "{m}");
    }
}
