//! The wall clock, read in one place: everything below the server takes the time as an
//! argument, so a decision stays a pure function of its inputs.

/// The current wall-clock time.
#[allow(clippy::disallowed_methods)] // the one place allowed to read it
pub fn now() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Seconds since the Unix epoch, with fractions.
pub fn unix_now_f64() -> f64 {
    now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_millis() -> u64 {
    now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
