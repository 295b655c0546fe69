//! Load through a proxy: clients sending requests one after another until told to stop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::process::{http, HttpReply};

/// The path every load request asks for: a route of the test configurations that needs a token.
pub const PATH: &str = "/v1/models/acme/llama/infer";

/// Most requests one client sends, so a test that never stops its load still ends.
const MAX_PER_CLIENT: usize = 50_000;

/// One answer of the load.
#[derive(Debug)]
pub struct Answer {
    /// Which token of the load's list the request carried.
    pub token: usize,
    /// When the request was sent, from the start of the load.
    pub sent: Duration,
    /// What came back.
    pub reply: HttpReply,
}

/// `GET` [`PATH`] requests sent through `ingress` by several clients, each waiting for its
/// answer before sending the next, until [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    start: Instant,
}

impl Load {
    /// Start `clients` clients. Request `n` of client `c` carries `tokens[(c + n) % len]` as
    /// its bearer token; each answer goes to `answered`.
    pub fn start(
        ingress: SocketAddr,
        clients: usize,
        tokens: &[String],
        answered: impl Fn(Answer) + Send + Sync + 'static,
    ) -> Load {
        assert!(!tokens.is_empty(), "a load needs a token");
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let bearers: Arc<Vec<String>> =
            Arc::new(tokens.iter().map(|t| format!("Bearer {t}")).collect());
        let answered = Arc::new(answered);
        let workers = (0..clients)
            .map(|c| {
                let (stop, bearers, answered) = (stop.clone(), bearers.clone(), answered.clone());
                tokio::spawn(async move {
                    for n in 0..MAX_PER_CLIENT {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let token = (c + n) % bearers.len();
                        let sent = start.elapsed();
                        let reply =
                            http(ingress, "GET", PATH, &[("authorization", &bearers[token])]).await;
                        answered(Answer { token, sent, reply });
                    }
                })
            })
            .collect();
        Load {
            stop,
            workers,
            start,
        }
    }

    /// Time since the load started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Stop every client after its request in flight, and wait for them.
    pub async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await.unwrap();
        }
    }
}
