//! Geography of the synthetic shop: the cities customers live in (country, state, city,
//! coordinates and a population weight that makes most customers American with a European
//! minority), the currency each country pays in, plausible IPv4 prefixes per country, the
//! countries the fraud patterns treat as high-risk, and the haversine distance that the
//! impossible-travel pattern is built on.

use rand::Rng;

use crate::model::Location;

/// A city customers can live in or transact from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct City {
    /// ISO 3166-1 alpha-2.
    pub country: &'static str,
    pub state: &'static str,
    pub name: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// Relative share of customers living there.
    pub weight: f64,
}

const fn city(
    country: &'static str,
    state: &'static str,
    name: &'static str,
    lat: f64,
    lon: f64,
    weight: f64,
) -> City {
    City {
        country,
        state,
        name,
        lat,
        lon,
        weight,
    }
}

/// Where customers live.
pub const HOME_CITIES: &[City] = &[
    city("US", "NY", "New York", 40.7128, -74.0060, 9.0),
    city("US", "CA", "Los Angeles", 34.0522, -118.2437, 7.0),
    city("US", "IL", "Chicago", 41.8781, -87.6298, 5.0),
    city("US", "TX", "Houston", 29.7604, -95.3698, 4.5),
    city("US", "AZ", "Phoenix", 33.4484, -112.0740, 3.0),
    city("US", "PA", "Philadelphia", 39.9526, -75.1652, 3.0),
    city("US", "TX", "Austin", 30.2672, -97.7431, 2.5),
    city("US", "CA", "San Francisco", 37.7749, -122.4194, 3.0),
    city("US", "WA", "Seattle", 47.6062, -122.3321, 3.0),
    city("US", "FL", "Miami", 25.7617, -80.1918, 3.0),
    city("US", "GA", "Atlanta", 33.7490, -84.3880, 2.5),
    city("US", "MA", "Boston", 42.3601, -71.0589, 2.5),
    city("US", "CO", "Denver", 39.7392, -104.9903, 2.0),
    city("US", "MN", "Minneapolis", 44.9778, -93.2650, 1.5),
    city("US", "OR", "Portland", 45.5152, -122.6784, 1.5),
    city("US", "NC", "Charlotte", 35.2271, -80.8431, 1.5),
    city("GB", "ENG", "London", 51.5074, -0.1278, 4.5),
    city("GB", "ENG", "Manchester", 53.4808, -2.2426, 1.5),
    city("GB", "SCT", "Edinburgh", 55.9533, -3.1883, 1.0),
    city("DE", "BE", "Berlin", 52.5200, 13.4050, 2.0),
    city("DE", "BY", "Munich", 48.1351, 11.5820, 1.5),
    city("FR", "IDF", "Paris", 48.8566, 2.3522, 2.5),
    city("FR", "ARA", "Lyon", 45.7640, 4.8357, 0.8),
    city("NL", "NH", "Amsterdam", 52.3676, 4.9041, 1.0),
    city("ES", "MD", "Madrid", 40.4168, -3.7038, 1.0),
    city("IT", "MI", "Milan", 45.4642, 9.1900, 0.8),
    city("IE", "D", "Dublin", 53.3498, -6.2603, 0.6),
    city("CA", "ON", "Toronto", 43.6532, -79.3832, 2.0),
    city("CA", "BC", "Vancouver", 49.2827, -123.1207, 1.0),
    city("AU", "NSW", "Sydney", -33.8688, 151.2093, 1.0),
    city("JP", "13", "Tokyo", 35.6762, 139.6503, 0.7),
    city("MX", "CMX", "Mexico City", 19.4326, -99.1332, 0.6),
];

/// Cities in the countries the fraud patterns treat as high-risk.
pub const HIGH_RISK_CITIES: &[City] = &[
    city("NG", "LA", "Lagos", 6.5244, 3.3792, 1.0),
    city("GH", "AA", "Accra", 5.6037, -0.1870, 1.0),
    city("PK", "SD", "Karachi", 24.8607, 67.0011, 1.0),
    city("VN", "SG", "Ho Chi Minh City", 10.8231, 106.6297, 1.0),
    city("ID", "JK", "Jakarta", -6.2088, 106.8456, 1.0),
    city("RO", "B", "Bucharest", 44.4268, 26.1025, 1.0),
];

/// ISO 3166-1 alpha-2 codes of the high-risk countries (the fraud scorer's default list
/// should match this one for the generator's ground truth to be detectable).
pub const HIGH_RISK_COUNTRIES: &[&str] = &["NG", "GH", "PK", "VN", "ID", "RO"];

/// The ISO 4217 currency a customer in `country` pays in: mostly USD, with EUR and GBP.
pub fn currency_of(country: &str) -> &'static str {
    match country {
        "GB" => "GBP",
        "DE" | "FR" | "NL" | "ES" | "IT" | "IE" => "EUR",
        _ => "USD",
    }
}

/// Plausible public /8 prefixes for addresses in `country`.
pub fn ip_prefixes(country: &str) -> &'static [u8] {
    match country {
        "US" => &[23, 24, 50, 64, 68, 71, 73, 98, 104, 107],
        "CA" => &[24, 70, 99, 142],
        "GB" => &[2, 31, 51, 81, 86],
        "DE" => &[46, 79, 84, 87, 91],
        "FR" => &[37, 78, 82, 90],
        "NL" | "ES" | "IT" | "IE" => &[77, 80, 83, 85, 89],
        "AU" => &[1, 49, 101, 110],
        "JP" => &[60, 111, 126, 133],
        "MX" => &[187, 189, 201],
        _ => &[41, 102, 103, 105, 113, 196, 197],
    }
}

/// A location in `city`, jittered by up to about 10 km so customers do not share a point.
pub fn location_in(rng: &mut impl Rng, city: &City) -> Location {
    Location {
        country: city.country.to_string(),
        state: Some(city.state.to_string()),
        city: Some(city.name.to_string()),
        lat: round5(city.lat + rng.gen_range(-0.08..0.08)),
        lon: round5(city.lon + rng.gen_range(-0.08..0.08)),
    }
}

fn round5(x: f64) -> f64 {
    (x * 1e5).round() / 1e5
}

/// Great-circle distance in kilometres (the scorer's, so both measure alike).
pub use crate::fraud::haversine_km;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_new_york_to_london() {
        let d = haversine_km(40.7128, -74.0060, 51.5074, -0.1278);
        assert!((d - 5570.0).abs() < 20.0, "{d}");
    }

    #[test]
    fn high_risk_lists_agree() {
        for c in HIGH_RISK_CITIES {
            assert!(HIGH_RISK_COUNTRIES.contains(&c.country));
        }
        for c in HOME_CITIES {
            assert!(!HIGH_RISK_COUNTRIES.contains(&c.country));
        }
    }
}
