//! Great-circle distance (haversine) between two points given in degrees, in kilometres:
//! what the impossible-travel feature measures and what the generator builds its
//! impossible-travel episodes on.

/// Mean Earth radius in km.
const EARTH_KM: f64 = 6371.0;

/// Great-circle distance in kilometres.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_KM * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        let d = haversine_km(40.7128, -74.0060, 51.5074, -0.1278);
        assert!((d - 5570.0).abs() < 20.0, "{d}");
        assert_eq!(haversine_km(1.0, 2.0, 1.0, 2.0), 0.0);
        let antipode = haversine_km(0.0, 0.0, 0.0, 180.0);
        assert!((antipode - std::f64::consts::PI * EARTH_KM).abs() < 1e-6);
    }
}
