//! The customer population: each customer has a lowercase UUID, an email address, a home
//! city with coordinates, one to three devices, one or two IP addresses in their country,
//! preferred payment methods, a spending level and an activity weight. Activity is
//! Pareto-distributed, so a minority of customers account for most sessions, as in a real
//! shop.

use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::Pareto;

use super::geo::{self, City, HOME_CITIES};
use super::ids::{hex, ipv4, uuid};
use crate::model::{Device, Location};

const FIRST: &[&str] = &[
    "james",
    "mary",
    "robert",
    "patricia",
    "john",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "william",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "emma",
    "oliver",
    "sophie",
    "lukas",
    "lea",
    "hugo",
    "chloe",
    "mateo",
    "giulia",
    "yuki",
    "aisha",
    "liam",
];
const LAST: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "wilson",
    "anderson",
    "taylor",
    "moore",
    "martin",
    "lee",
    "walker",
    "schmidt",
    "muller",
    "dubois",
    "rossi",
    "tanaka",
    "obrien",
    "novak",
];
const DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "proton.me",
    "hotmail.com",
    "aol.com",
];

/// Payment methods and how common each is as a first preference.
pub const PAYMENT_METHODS: &[(&str, f64)] = &[
    ("credit_card", 0.45),
    ("debit_card", 0.2),
    ("paypal", 0.15),
    ("apple_pay", 0.08),
    ("google_pay", 0.06),
    ("gift_card", 0.03),
    ("bank_transfer", 0.03),
];

/// (device type, share, operating systems)
const DEVICE_KINDS: &[(&str, f64, &[&str])] = &[
    (
        "mobile",
        0.55,
        &["iOS 17", "iOS 18", "Android 14", "Android 15"],
    ),
    (
        "desktop",
        0.35,
        &["Windows 11", "Windows 10", "macOS 14", "Linux"],
    ),
    ("tablet", 0.10, &["iPadOS 17", "Android 13"]),
];

/// How much a customer tends to spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spending {
    Low,
    Medium,
    High,
}

impl Spending {
    /// Price bias for product choice: -1 prefers cheaper, 1 dearer.
    pub fn bias(self) -> i8 {
        match self {
            Spending::Low => -1,
            Spending::Medium => 0,
            Spending::High => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub email: String,
    pub home: &'static City,
    pub location: Location,
    pub currency: &'static str,
    pub devices: Vec<Device>,
    pub ips: Vec<String>,
    /// Preferred payment methods, most preferred first.
    pub payment_methods: Vec<&'static str>,
    pub spending: Spending,
}

/// All customers and a sampler weighted by their activity.
pub struct Population {
    pub customers: Vec<Customer>,
    activity: WeightedIndex<f64>,
}

impl Population {
    pub fn generate(rng: &mut impl Rng, n: usize) -> Population {
        let n = n.max(1);
        let cities = WeightedIndex::new(HOME_CITIES.iter().map(|c| c.weight)).expect("weights");
        let pareto: Pareto<f64> = Pareto::new(1.0, 1.3).expect("valid Pareto");
        let mut customers = Vec::with_capacity(n);
        let mut weights = Vec::with_capacity(n);
        for _ in 0..n {
            let home = &HOME_CITIES[cities.sample(rng)];
            customers.push(customer(rng, home));
            weights.push(pareto.sample(rng).min(200.0));
        }
        let activity = WeightedIndex::new(&weights).expect("positive weights");
        Population {
            customers,
            activity,
        }
    }

    /// A customer, more active ones more often.
    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        self.activity.sample(rng) as u32
    }

    pub fn get(&self, idx: u32) -> &Customer {
        &self.customers[idx as usize]
    }
}

fn customer(rng: &mut impl Rng, home: &'static City) -> Customer {
    let id = uuid(rng);
    let email = format!(
        "{}.{}{}@{}",
        FIRST.choose(rng).expect("names"),
        LAST.choose(rng).expect("names"),
        rng.gen_range(1..1000),
        DOMAINS.choose(rng).expect("domains")
    );
    let n_devices = *[1, 1, 2, 2, 3].choose(rng).expect("counts");
    let devices = (0..n_devices).map(|_| device(rng)).collect();
    let prefixes = geo::ip_prefixes(home.country);
    let ips = (0..rng.gen_range(1..=2))
        .map(|_| ipv4(rng, prefixes))
        .collect();
    let methods = WeightedIndex::new(PAYMENT_METHODS.iter().map(|m| m.1)).expect("weights");
    let mut payment_methods = vec![PAYMENT_METHODS[methods.sample(rng)].0];
    let second = PAYMENT_METHODS[methods.sample(rng)].0;
    if second != payment_methods[0] {
        payment_methods.push(second);
    }
    let spending = match rng.gen_range(0..100) {
        0..=49 => Spending::Low,
        50..=84 => Spending::Medium,
        _ => Spending::High,
    };
    Customer {
        id,
        email,
        home,
        location: geo::location_in(rng, home),
        currency: geo::currency_of(home.country),
        devices,
        ips,
        payment_methods,
        spending,
    }
}

/// A device, e.g. a phone the customer owns or one a fraudster uses.
pub fn device(rng: &mut impl Rng) -> Device {
    let r: f64 = rng.gen();
    let mut acc = 0.0;
    let mut kind = &DEVICE_KINDS[0];
    for k in DEVICE_KINDS {
        acc += k.1;
        kind = k;
        if r < acc {
            break;
        }
    }
    Device {
        device_type: kind.0.to_string(),
        os: kind.2.choose(rng).expect("os").to_string(),
        fingerprint: hex(rng, 8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::ids::{rng_for, Stream};

    #[test]
    fn population_is_plausible() {
        let mut rng = rng_for(3, Stream::World);
        let p = Population::generate(&mut rng, 2000);
        let us = p
            .customers
            .iter()
            .filter(|c| c.home.country == "US")
            .count();
        assert!((1000..1800).contains(&us), "US share {us}");
        for c in &p.customers {
            assert!(c.email.contains('@') && !c.devices.is_empty() && !c.ips.is_empty());
        }
        let mut hits = vec![0u32; 2000];
        for _ in 0..20_000 {
            hits[p.sample(&mut rng) as usize] += 1;
        }
        hits.sort_unstable();
        let top: u32 = hits[1800..].iter().sum();
        assert!(top > 6000, "top 10% of customers should be busy, got {top}");
    }
}
