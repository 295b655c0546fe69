//! When a key set is fetched again: after a success, the provider's max-age or the refresh
//! interval; after failures, a backoff. Both with jitter, so replicas spread out.

use std::time::Duration;

/// `max-age` from a Cache-Control value.
pub fn parse_max_age(v: &str) -> Option<Duration> {
    v.split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|n| n.trim_matches('"').parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The next refresh after a success: the provider's max-age clamped to 1 min..24 h, else
/// the configured interval; with ±10% jitter so replicas don't refresh in lockstep.
pub fn next_refresh(max_age: Option<Duration>, default: Duration) -> Duration {
    let base = match max_age {
        Some(a) => a.clamp(Duration::from_secs(60), Duration::from_secs(24 * 3600)),
        None => default,
    };
    jitter(base)
}

fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::random_range(0.9..1.1);
    d.mul_f64(f)
}

/// Backoff after `failures` consecutive failed loads: 1 s doubling, at most the refresh
/// interval and 5 min.
pub fn backoff(failures: u32, refresh: Duration) -> Duration {
    let cap = refresh.min(Duration::from_secs(300));
    let d = Duration::from_secs(1).saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    jitter(d.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_and_clamped() {
        assert_eq!(
            parse_max_age("public, max-age=120"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_max_age("no-store"), None);
        let short = next_refresh(Some(Duration::from_secs(5)), Duration::from_secs(600));
        assert!(short >= Duration::from_secs(54) && short <= Duration::from_secs(66));
        let long = next_refresh(
            Some(Duration::from_secs(10 * 86400)),
            Duration::from_secs(600),
        );
        assert!(long <= Duration::from_secs(24 * 3600 * 11 / 10));
        let default = next_refresh(None, Duration::from_secs(600));
        assert!(default >= Duration::from_secs(540) && default <= Duration::from_secs(660));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let ten_min = Duration::from_secs(600);
        assert!(backoff(1, ten_min) <= Duration::from_millis(1100));
        assert!(backoff(4, ten_min) >= Duration::from_millis(7200));
        assert!(backoff(30, ten_min) <= Duration::from_secs(330));
        assert!(backoff(30, Duration::from_secs(2)) <= Duration::from_millis(2200));
    }
}
