//! The connection limits and timeouts of both ports, as `serve` flags, and the settings refused.

use std::time::Duration;

/// Limits and timeouts of the connections on both ports, and how long a shutdown may take.
///
/// The doc line of each field is its `serve` flag's help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ConnectionOptions {
    /// Most open connections on the gRPC port; more wait until one closes.
    #[arg(long, env = "CLAIMGATE_GRPC_MAX_CONNECTIONS", default_value_t = 4096)]
    pub grpc_max_connections: usize,
    /// Most open connections on the HTTP port; more wait until one closes.
    #[arg(long, env = "CLAIMGATE_HTTP_MAX_CONNECTIONS", default_value_t = 128)]
    pub http_max_connections: usize,
    /// Close a connection (either port) on which nothing was read or written for this long.
    #[arg(long, env = "CLAIMGATE_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// An HTTP request head must arrive in full within this (also the keep-alive wait).
    #[arg(long, env = "CLAIMGATE_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_header_timeout: Duration,
    /// Send an HTTP/2 PING on a gRPC connection that has been quiet this long.
    #[arg(long, env = "CLAIMGATE_GRPC_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub grpc_keepalive_interval: Duration,
    /// Close a gRPC connection whose PING is not answered within this.
    #[arg(long, env = "CLAIMGATE_GRPC_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub grpc_keepalive_timeout: Duration,
    /// Idle time before TCP keepalive probes start (both ports).
    #[arg(long, env = "CLAIMGATE_TCP_KEEPALIVE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub tcp_keepalive: Duration,
    /// A new connection's handshake (gRPC: TLS and the HTTP/2 preface; HTTP: the first
    /// byte of a request) must arrive within this, or the connection is closed.
    #[arg(long, env = "CLAIMGATE_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,
    /// Most concurrent checks (HTTP/2 streams) per gRPC connection.
    #[arg(
        long,
        env = "CLAIMGATE_GRPC_MAX_CONCURRENT_STREAMS",
        default_value_t = 100
    )]
    pub grpc_max_concurrent_streams: u32,
    /// Largest check request accepted (bytes, or with KiB/MiB); raise it when Envoy's
    /// ext_authz sends request bodies (with_request_body.max_request_bytes).
    #[arg(long, env = "CLAIMGATE_GRPC_MAX_MESSAGE_SIZE", default_value = "256KiB", value_parser = parse_size)]
    pub grpc_max_message_size: usize,
    /// Most checks being received or decided at once; more are refused (RESOURCE_EXHAUSTED).
    #[arg(long, env = "CLAIMGATE_MAX_IN_FLIGHT_CHECKS", default_value_t = 512)]
    pub max_in_flight_checks: usize,
    /// After SIGTERM, keep serving this long with /readyz 503 before draining.
    #[arg(long, env = "CLAIMGATE_SHUTDOWN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub shutdown_delay: Duration,
    /// Stop waiting for in-flight checks and open connections this long into the drain.
    #[arg(long, env = "CLAIMGATE_SHUTDOWN_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
}

/// A size in bytes: `262144`, `256KiB` or `1MiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let scale = match unit {
        "" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        _ => {
            return Err(format!(
                "{s:?}: the unit is KiB or MiB (or none, for bytes)"
            ))
        }
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{s:?} is not a size like 262144, 256KiB or 1MiB"))
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            grpc_max_connections: 4096,
            http_max_connections: 128,
            idle_timeout: Duration::from_secs(60),
            http_header_timeout: Duration::from_secs(10),
            grpc_keepalive_interval: Duration::from_secs(30),
            grpc_keepalive_timeout: Duration::from_secs(10),
            tcp_keepalive: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(5),
            grpc_max_concurrent_streams: 100,
            grpc_max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_in_flight_checks: 512,
            shutdown_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// The default largest check request: Envoy's default header limit (60 KiB) fits with room to
/// spare, and so does a request body of up to about 190 KiB when the filter sends one
/// (`with_request_body`); a CheckRequest without a body is a few KiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 256 * 1024;

/// Why a set of [`ConnectionOptions`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionOptionsError {
    /// A limit or timeout is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// Healthy idle gRPC connections would be cut before their keepalive PING.
    #[error(
        "idle timeout ({idle:?}) must be longer than the gRPC keepalive interval ({keepalive:?}), \
         or healthy idle gRPC connections are closed before their keepalive PING"
    )]
    IdleBeforeKeepalive {
        /// The idle timeout.
        idle: Duration,
        /// The keepalive interval.
        keepalive: Duration,
    },
}

impl ConnectionOptions {
    /// Refuse settings that would close every connection at once or cut healthy ones.
    pub fn check(&self) -> Result<(), ConnectionOptionsError> {
        let limits = [
            ("grpc-max-connections", self.grpc_max_connections == 0),
            ("http-max-connections", self.http_max_connections == 0),
            ("idle-timeout", self.idle_timeout.is_zero()),
            ("http-header-timeout", self.http_header_timeout.is_zero()),
            (
                "grpc-keepalive-interval",
                self.grpc_keepalive_interval.is_zero(),
            ),
            (
                "grpc-keepalive-timeout",
                self.grpc_keepalive_timeout.is_zero(),
            ),
            ("tcp-keepalive", self.tcp_keepalive.is_zero()),
            ("handshake-timeout", self.handshake_timeout.is_zero()),
            (
                "grpc-max-concurrent-streams",
                self.grpc_max_concurrent_streams == 0,
            ),
            ("grpc-max-message-size", self.grpc_max_message_size == 0),
            ("max-in-flight-checks", self.max_in_flight_checks == 0),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, zero)| *zero) {
            return Err(ConnectionOptionsError::Zero(name));
        }
        if self.idle_timeout <= self.grpc_keepalive_interval {
            return Err(ConnectionOptionsError::IdleBeforeKeepalive {
                idle: self.idle_timeout,
                keepalive: self.grpc_keepalive_interval,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_settings_that_cut_healthy_connections_do_not() {
        let ok = ConnectionOptions::default();
        assert_eq!(ok.check(), Ok(()));
        let zero = ConnectionOptions {
            http_max_connections: 0,
            ..ok
        };
        assert_eq!(
            zero.check(),
            Err(ConnectionOptionsError::Zero("http-max-connections"))
        );
        let short = ConnectionOptions {
            idle_timeout: Duration::from_secs(30),
            ..ok
        };
        assert!(matches!(
            short.check(),
            Err(ConnectionOptionsError::IdleBeforeKeepalive { .. })
        ));
    }
}
