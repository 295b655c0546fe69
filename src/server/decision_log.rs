//! The decision log (`serve --decision-log PATH|-`): one JSON line per decision, for audits.
//!
//! Failure semantics: the log never delays or fails a check. A check hands its [`Event`] to a
//! bounded queue with a send that never blocks; when the queue is full (the sink is slow or
//! stuck) the event is dropped and counted (`claimgate_decision_log_dropped_total`). One
//! thread owns the sink: a failed open or write is reported once and counted, and later
//! events are dropped (and counted) until the next reopen (`SIGUSR1`) tries again. Nothing
//! here ends the process.
//!
//! An event holds what the decision already knew: the request's fields, the token's
//! [`Facts`] (read where verification decoded it, or from its cache entry), and the decision.
//! Serialising happens on the writer thread.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use crate::core::decision::{Allow, Decision, Deny, GrantedBy, Request};
use crate::core::decision_id::{self, DecisionId};
use crate::core::token::Facts;
use crate::server::metrics::Metrics;

/// How many events may wait for the writer before new ones are dropped.
pub const QUEUE: usize = 4096;

/// How long a busy writer lets events gather before it writes them (512 events in 5 ms is
/// 100,000 decisions a second; above that it writes without pausing).
const BATCH_INTERVAL: Duration = Duration::from_millis(5);

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// Standard output (`-`): for a container runtime's log collector.
    Stdout,
    /// A file, appended to and reopened on `SIGUSR1` (for logrotate).
    File(PathBuf),
}

impl Sink {
    /// `-` is stdout, anything else a file path.
    pub fn parse(arg: &str) -> Sink {
        match arg {
            "-" => Sink::Stdout,
            path => Sink::File(PathBuf::from(path)),
        }
    }
}

impl std::str::FromStr for Sink {
    type Err = std::convert::Infallible;

    fn from_str(arg: &str) -> Result<Self, Self::Err> {
        Ok(Sink::parse(arg))
    }
}

/// The `serve` flags of the decision log.
#[derive(Debug, Clone, clap::Args)]
pub struct DecisionLogArgs {
    /// Write one JSON line per decision to this file (`-`: stdout); reopened on SIGUSR1.
    #[arg(long, env = "CLAIMGATE_DECISION_LOG")]
    pub decision_log: Option<Sink>,
    /// The share of allows written to the decision log (0..1); denials are always written.
    #[arg(long, env = "CLAIMGATE_DECISION_LOG_ALLOW_RATE", default_value_t = 1.0, value_parser = parse_rate)]
    pub decision_log_allow_rate: f64,
}

impl DecisionLogArgs {
    /// The decision log's options; `None` when no log was asked for.
    pub fn options(self) -> Option<Options> {
        self.decision_log.map(|sink| Options {
            sink,
            allow_rate: self.decision_log_allow_rate,
            queue: QUEUE,
        })
    }
}

/// A share from 0 to 1.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a number from 0 to 1")),
    }
}

/// How the decision log is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Where.
    pub sink: Sink,
    /// The share of allows written (0..=1); denials are always written.
    pub allow_rate: f64,
    /// How many events may wait for the writer.
    pub queue: usize,
}

/// One decision, as the log line says it.
#[derive(Debug)]
pub struct Event {
    /// The decision's id.
    pub id: DecisionId,
    /// When the check began, in milliseconds since the epoch (the id's time too).
    pub unix_millis: u64,
    /// The configuration generation decided on.
    pub generation: u64,
    /// The configuration's content hash (shared with the snapshot).
    pub config_digest: Arc<str>,
    /// The request, as Envoy described it.
    pub request: RequestFields,
    /// What may be logged of the token, when one was readable.
    pub token: Option<Arc<Facts>>,
    /// The answer.
    pub result: Outcome,
    /// How long the check took, in microseconds.
    pub duration_us: u64,
}

/// The request's fields in a log line, kept in one string (one allocation per event, not
/// four): method, host, path without its query, request id, end to end.
#[derive(Debug, Default)]
pub struct RequestFields {
    text: String,
    ends: [usize; 3],
}

impl RequestFields {
    /// The fields of `request` (none when Envoy sent no HTTP attributes).
    pub fn new(request: Option<&Request<'_>>, request_id: &str) -> RequestFields {
        let (method, host, path) = match request {
            // The query may carry credentials.
            Some(r) => (
                r.method,
                r.host,
                r.path.split(['?', '#']).next().unwrap_or(r.path),
            ),
            None => ("", "", ""),
        };
        let mut text =
            String::with_capacity(method.len() + host.len() + path.len() + request_id.len());
        let mut ends = [0; 3];
        for (end, part) in ends.iter_mut().zip([method, host, path]) {
            text.push_str(part);
            *end = text.len();
        }
        text.push_str(request_id);
        RequestFields { text, ends }
    }

    /// Method, host, path and request id.
    pub fn parts(&self) -> [&str; 4] {
        let [a, b, c] = self.ends;
        [
            &self.text[..a],
            &self.text[a..b],
            &self.text[b..c],
            &self.text[c..],
        ]
    }
}

impl Serialize for RequestFields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let [method, host, path, request_id] = self.parts();
        let mut st = s.serialize_struct("RequestFields", 4)?;
        st.serialize_field("method", method)?;
        st.serialize_field("host", host)?;
        st.serialize_field("path", path)?;
        st.serialize_field("request_id", request_id)?;
        st.end()
    }
}

/// The answer's fields in a log line.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// Whether the request went through (a dry-run denial did).
    pub allowed: bool,
    /// The HTTP status the client got (200 on allow).
    pub status: u16,
    /// The denial's reason code (a dry-run denial's too).
    pub reason: Option<&'static str>,
    /// Whether a denial was waived by dry run.
    pub dry_run: bool,
    /// The external identity, when one was selected (shared with the snapshot).
    #[serde(serialize_with = "shared_text")]
    pub identity: Option<Arc<str>>,
    /// Its SSO.
    #[serde(serialize_with = "shared_text")]
    pub sso: Option<Arc<str>>,
    /// The resource the request targeted.
    #[serde(serialize_with = "shared_text")]
    pub resource: Option<Arc<str>>,
    /// The identity's role on it.
    pub role: Option<&'static str>,
    /// The role the request required.
    pub required_role: Option<&'static str>,
    /// The binding that gave an allow its role: `{"subject": "team:…", "resource": "…"}`;
    /// absent on a denial (a dry-run one too) and a public route.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "granted_by")]
    pub granted_by: Option<GrantedBy>,
}

impl Outcome {
    /// The fields of a decision.
    pub fn of(decision: &Decision) -> Outcome {
        match decision {
            Decision::Allow(Allow::Public { .. }) => Outcome {
                allowed: true,
                status: 200,
                ..Outcome::default()
            },
            Decision::Allow(Allow::Identity(g)) => Outcome {
                allowed: true,
                status: 200,
                identity: Some(g.identity.clone()),
                sso: Some(g.sso.clone()),
                resource: Some(g.resource.clone()),
                role: Some(g.role.as_str()),
                required_role: Some(g.required.as_str()),
                granted_by: Some(g.granted_by.clone()),
                ..Outcome::default()
            },
            Decision::Allow(Allow::DryRun(d)) => Outcome {
                allowed: true,
                status: 200,
                dry_run: true,
                ..Outcome::denied(d)
            },
            Decision::Deny(d) => Outcome::denied(d),
        }
    }

    fn denied(d: &Deny) -> Outcome {
        Outcome {
            allowed: false,
            status: d.reason.status(),
            reason: Some(d.reason.code()),
            dry_run: false,
            identity: d.who.as_ref().map(|w| w.identity.clone()),
            sso: d.who.as_ref().map(|w| w.sso.clone()),
            resource: d.target.as_ref().map(|(r, _)| Arc::from(r.as_str())),
            role: d.who.as_ref().and_then(|w| w.role).map(|r| r.as_str()),
            required_role: d.target.as_ref().map(|(_, r)| r.as_str()),
            // The SPEC names the grant of an allow; a denial's lines stay as they were.
            granted_by: None,
        }
    }
}

/// A grant as the SPEC writes it: the subject with its kind, and the resource it is on.
fn granted_by<S: serde::Serializer>(v: &Option<GrantedBy>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let Some(g) = v else {
        return s.serialize_none();
    };
    let mut st = s.serialize_struct("GrantedBy", 2)?;
    st.serialize_field("subject", &format_args!("{}", g.subject))?;
    st.serialize_field("resource", &*g.resource)?;
    st.end()
}

/// A shared text as a JSON string (serde serialises `Arc` only with its `rc` feature).
fn shared_text<S: serde::Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(t) => s.serialize_str(t),
        None => s.serialize_none(),
    }
}

/// The line as written: the SPEC's fields in its order.
#[derive(Serialize)]
struct Line<'a> {
    decision_id: &'a str,
    time: String,
    generation: u64,
    config_digest: String,
    request: &'a RequestFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a Facts>,
    result: &'a Outcome,
    duration_us: u64,
}

impl Event {
    /// The event as one JSON line, newline included, appended to `out`.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        let mut id = [0u8; decision_id::LEN];
        let time = UNIX_EPOCH + Duration::from_millis(self.unix_millis);
        let line = Line {
            decision_id: self.id.encode(&mut id),
            time: humantime::format_rfc3339_millis(time).to_string(),
            generation: self.generation,
            config_digest: format!("sha256:{}", self.config_digest),
            request: &self.request,
            token: self.token.as_deref(),
            result: &self.result,
            duration_us: self.duration_us,
        };
        // Serialising plain strings, numbers and options into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, &line).is_ok() {
            out.push(b'\n');
        }
    }
}

// Events travel inline in the queue's preallocated slots: boxing them would cost a check an
// allocation for nothing.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Event(Event),
    Reopen,
}

/// The check side of the decision log: a bounded queue to the writer thread.
#[derive(Debug, Clone)]
pub struct DecisionLog {
    tx: SyncSender<Msg>,
    allow_rate: f64,
    reopen: Arc<AtomicBool>,
    metrics: Metrics,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// The writer thread, to wait for at shutdown.
#[derive(Debug)]
pub struct WriterHandle {
    done: Receiver<()>,
}

impl WriterHandle {
    /// Wait at most `limit` for the writer to write what is queued (every [`DecisionLog`]
    /// must be dropped first); a sink that is stuck is given up on.
    pub fn finish(self, limit: Duration) -> bool {
        !matches!(
            self.done.recv_timeout(limit),
            Err(mpsc::RecvTimeoutError::Timeout)
        )
    }
}

impl DecisionLog {
    /// Start the writer thread; the sink is opened there, so a FIFO without a reader or a slow
    /// disk never holds the server up.
    pub fn start(opts: &Options, metrics: Metrics) -> io::Result<(DecisionLog, WriterHandle)> {
        let (tx, rx) = mpsc::sync_channel(opts.queue.max(1));
        let (done_tx, done) = mpsc::channel();
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            sink: opts.sink.clone(),
            out: None,
            metrics: metrics.clone(),
            reopen: reopen.clone(),
            pending: 0,
        };
        std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || {
                writer.run(rx);
                let _ = done_tx.send(());
            })?;
        let log = DecisionLog {
            tx,
            allow_rate: opts.allow_rate,
            reopen,
            metrics,
        };
        Ok((log, WriterHandle { done }))
    }

    /// Whether a decision is to be written: every denial (dry run's too), and allows at the
    /// sampling rate.
    pub fn wants(&self, allowed: bool) -> bool {
        !allowed
            || self.allow_rate >= 1.0
            || (self.allow_rate > 0.0 && rand::random::<f64>() < self.allow_rate)
    }

    /// Queue an event; never blocks. A full queue drops it, and counts the drop.
    pub fn send(&self, event: Event) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Event(event))
        {
            self.metrics.decision_log_dropped(1);
        }
    }

    /// Close and reopen the sink before the next line (after logrotate moved the file).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
        // Wakes an idle writer; when the queue is full the writer is busy and sees the flag.
        let _ = self.tx.try_send(Msg::Reopen);
    }
}

struct Writer {
    sink: Sink,
    out: Option<BufWriter<Box<dyn Write + Send>>>,
    metrics: Metrics,
    reopen: Arc<AtomicBool>,
    /// Lines in the buffer, counted as written once a flush delivered them.
    pending: u64,
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        self.open();
        let mut line = Vec::with_capacity(1024);
        // Idle, the writer waits in `recv`, and the first event of a burst wakes it. Busy, it
        // sleeps between batches instead: a writer waiting in `recv` costs every check that
        // sends a wake-up (a futex call, the largest part of logging a decision), a sleeping
        // one costs nothing. The queue holds a batch's events meanwhile.
        while let Ok(msg) = rx.recv() {
            self.handle(msg, &mut line);
            loop {
                // Write what is waiting, then flush once: one write(2) per batch.
                let mut batch = 0usize;
                let disconnected = loop {
                    match rx.try_recv() {
                        Ok(msg) => {
                            self.handle(msg, &mut line);
                            batch += 1;
                        }
                        Err(mpsc::TryRecvError::Empty) => break false,
                        Err(mpsc::TryRecvError::Disconnected) => break true,
                    }
                };
                self.flush();
                if disconnected || batch == 0 {
                    break;
                }
                // A large batch means events come faster than a sleep would let the queue
                // hold them: write on without sleeping (and still without being woken).
                if batch < QUEUE / 8 {
                    std::thread::sleep(BATCH_INTERVAL);
                }
            }
        }
        self.flush();
    }

    fn handle(&mut self, msg: Msg, line: &mut Vec<u8>) {
        if self.reopen.swap(false, Ordering::AcqRel) {
            self.flush();
            self.out = None;
            self.open();
        }
        let Msg::Event(event) = msg else { return };
        let Some(out) = &mut self.out else {
            self.metrics.decision_log_dropped(1);
            return;
        };
        line.clear();
        event.write_line(line);
        match out.write_all(line) {
            Ok(()) => self.pending += 1,
            Err(e) => {
                self.metrics.decision_log_dropped(1);
                self.fail("write", e);
            }
        }
    }

    fn open(&mut self) {
        let opened: io::Result<Box<dyn Write + Send>> = match &self.sink {
            Sink::Stdout => Ok(Box::new(io::stdout())),
            Sink::File(path) => open_append(path).map(|f| Box::new(f) as Box<dyn Write + Send>),
        };
        match opened {
            Ok(w) => self.out = Some(BufWriter::with_capacity(64 * 1024, w)),
            Err(e) => self.fail("open", e),
        }
    }

    fn flush(&mut self) {
        if let Some(out) = &mut self.out {
            match out.flush() {
                Ok(()) => {
                    self.metrics.decision_logged(self.pending);
                    self.pending = 0;
                }
                Err(e) => self.fail("write", e),
            }
        }
    }

    /// Report a failure once: the sink is set aside until the next reopen, so the events
    /// after it are only counted.
    fn fail(&mut self, what: &str, error: io::Error) {
        // Dropping a BufWriter flushes it: drop what it holds instead, it would fail again.
        if let Some(out) = self.out.take() {
            drop(out.into_parts());
        }
        // What the buffer held is lost with it.
        self.metrics.decision_log_dropped(self.pending);
        self.pending = 0;
        self.metrics.decision_log_failed();
        let sink = match &self.sink {
            Sink::Stdout => "stdout".to_owned(),
            Sink::File(p) => p.display().to_string(),
        };
        tracing::error!(
            %sink,
            %error,
            "decision log: {what} failed; decisions are dropped (and counted) until SIGUSR1 reopens it"
        );
    }
}

fn open_append(path: &std::path::Path) -> io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Subjects and identities are not for every local user.
        opts.mode(0o640);
    }
    opts.open(path)
}

#[cfg(test)]
mod tests;
