//! Seasonality: how busy the shop is at a given event time, as a factor on the configured
//! event rate. It multiplies a diurnal curve (quiet around 4 am, busiest around 9 pm shop
//! time), a weekly curve (weekends busier) — both normalised to average 1 — and a calendar
//! factor for the holiday season: Thanksgiving, Black Friday (3x), the Black Friday
//! weekend, Cyber Monday, the December run-up to Christmas, Christmas Day and Boxing Day.
//! Promotion days also raise conversion and discount rates (see `is_promo`). Shop time is
//! US Eastern standard time (UTC-5), since most customers are American.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Weekday};

use crate::model::time::Millis;

const SHOP_UTC_OFFSET_MS: i64 = -5 * 3_600_000;

/// Relative traffic per hour of day, shop time, hour 0 first.
const HOURLY: [f64; 24] = [
    0.45, 0.30, 0.20, 0.15, 0.12, 0.15, 0.30, 0.55, 0.80, 0.95, 1.05, 1.15, 1.25, 1.20, 1.15, 1.15,
    1.20, 1.30, 1.45, 1.65, 1.80, 1.70, 1.30, 0.85,
];

/// Relative traffic per weekday, Monday first.
const DAILY: [f64; 7] = [0.95, 0.95, 0.97, 0.98, 1.0, 1.12, 1.06];

/// Largest calendar factor (Black Friday).
const MAX_CALENDAR: f64 = 3.0;

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn max(xs: &[f64]) -> f64 {
    xs.iter().cloned().fold(f64::MIN, f64::max)
}

fn shop_time(t: Millis) -> chrono::NaiveDateTime {
    DateTime::from_timestamp_millis(t + SHOP_UTC_OFFSET_MS)
        .unwrap_or_default()
        .naive_utc()
}

/// Diurnal factor, linearly interpolated between hours, average 1.
pub fn diurnal(t: Millis) -> f64 {
    let st = shop_time(t);
    let h = st.hour() as usize;
    let frac = (st.minute() * 60 + st.second()) as f64 / 3600.0;
    let v = HOURLY[h] * (1.0 - frac) + HOURLY[(h + 1) % 24] * frac;
    v / mean(&HOURLY)
}

/// Weekday factor, average 1.
pub fn weekly(t: Millis) -> f64 {
    let wd = shop_time(t).weekday().num_days_from_monday() as usize;
    DAILY[wd] / mean(&DAILY)
}

fn thanksgiving(year: i32) -> NaiveDate {
    NaiveDate::from_weekday_of_month_opt(year, 11, Weekday::Thu, 4).expect("4th Thursday")
}

/// Holiday-season factor of the calendar day.
pub fn calendar(t: Millis) -> f64 {
    let d = shop_time(t).date();
    let tg = thanksgiving(d.year());
    let since_tg = (d - tg).num_days();
    match (d.month(), d.day(), since_tg) {
        (_, _, 0) => 1.3,
        (_, _, 1) => MAX_CALENDAR,
        (_, _, 2..=3) => 1.8,
        (_, _, 4) => 2.5,
        (12, 1..=20, _) => 1.4,
        (12, 21..=24, _) => 1.2,
        (12, 25, _) => 0.7,
        (12, 26, _) => 1.5,
        (11, _, _) => 1.1,
        _ => 1.0,
    }
}

/// The traffic factor at event time `t`.
pub fn intensity(t: Millis) -> f64 {
    diurnal(t) * weekly(t) * calendar(t)
}

/// An upper bound of `intensity` (for thinning the arrival process).
pub fn max_intensity() -> f64 {
    max(&HOURLY) / mean(&HOURLY) * max(&DAILY) / mean(&DAILY) * MAX_CALENDAR
}

/// Whether `t` falls on a promotion day (Black Friday to Cyber Monday, Boxing Day).
pub fn is_promo(t: Millis) -> bool {
    let d = shop_time(t).date();
    let since_tg = (d - thanksgiving(d.year())).num_days();
    (1..=4).contains(&since_tg) || (d.month() == 12 && d.day() == 26)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::parse_rfc3339;

    fn at(s: &str) -> Millis {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn diurnal_and_weekly_average_one() {
        let day = at("2024-03-04T05:00:00Z"); // Monday 00:00 shop time
        let n = 7 * 24 * 12;
        let avg: f64 = (0..n).map(|i| diurnal(day + i * 300_000)).sum::<f64>() / n as f64;
        assert!((avg - 1.0).abs() < 0.01, "{avg}");
        let wavg: f64 = (0..7).map(|i| weekly(day + i * 86_400_000)).sum::<f64>() / 7.0;
        assert!((wavg - 1.0).abs() < 1e-9);
        assert!(diurnal(at("2024-03-04T01:00:00Z")) > 3.0 * diurnal(at("2024-03-04T09:00:00Z")));
        assert!(weekly(at("2024-03-09T17:00:00Z")) > weekly(at("2024-03-05T17:00:00Z")));
    }

    #[test]
    fn black_friday_spikes() {
        let bf = at("2024-11-29T17:00:00Z");
        let normal = at("2024-11-08T17:00:00Z");
        assert_eq!(calendar(bf), MAX_CALENDAR);
        assert!(intensity(bf) > 2.5 * intensity(normal));
        assert!(is_promo(bf) && !is_promo(normal));
        assert!(
            calendar(at("2025-12-01T17:00:00Z")) > 2.0,
            "Cyber Monday 2025"
        );
        for i in 0..(366 * 24) {
            assert!(intensity(at("2024-01-01T00:00:00Z") + i * 3_600_000) <= max_intensity());
        }
    }
}
