//! Child processes for tests: a guard that kills and reaps on drop, the `claimgate serve`
//! binary started on free ports and waited for, and a byte-exact HTTP/1.1 client.
#![allow(dead_code)]

use std::fs::File;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tonic::transport::Channel;

/// How long a process may take to become ready before the test fails with its logs.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
pub const POLL: Duration = Duration::from_millis(50);
/// How long a process may take to exit after SIGTERM before the test fails.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A port that was free a moment ago. Only for addresses that must be known before the process
/// that binds them starts (claimgate's, which Envoy's config names); Envoy's own listeners bind
/// port 0 and are read back from its admin interface instead.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

pub fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A child process with its stdout and stderr in files; killed and reaped on drop.
pub struct ChildGuard {
    name: &'static str,
    child: Option<std::process::Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl ChildGuard {
    /// Spawn `cmd` with its output going to `NAME.stdout` / `NAME.stderr` in `dir`.
    /// `Err` carries the spawn error (binary missing, not executable, …).
    pub fn spawn(
        name: &'static str,
        mut cmd: Command,
        dir: &Path,
    ) -> Result<ChildGuard, std::io::Error> {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&stdout)?)
            .stderr(File::create(&stderr)?)
            .spawn()?;
        Ok(ChildGuard {
            name,
            child: Some(child),
            stdout,
            stderr,
        })
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Send a signal with kill(1).
    pub fn signal(&self, sig: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &child.id().to_string()])
                .status();
        }
    }

    /// Kill the process (SIGKILL: a crash, not a drain) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Both output files, for failure messages.
    pub fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "----- {name} stderr -----\n{}\n----- {name} stdout -----\n{}",
            tail(&read(&self.stderr)),
            tail(&read(&self.stdout)),
            name = self.name,
        )
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last 16 KiB of a log: enough to see why a process did not come up.
fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(16 * 1024);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The `claimgate serve` binary on 127.0.0.1, ready (`/readyz` is 200).
pub struct Claimgate {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    process: ChildGuard,
    _logs: tempfile::TempDir,
}

impl Claimgate {
    /// Start `claimgate serve --config DIR` and wait for `/readyz`. The ports are chosen just
    /// before the start; if another process took one in between, start again on new ones.
    pub async fn start(config_dir: &Path) -> Claimgate {
        Self::start_with(config_dir, &[]).await
    }

    /// [`Claimgate::start`] with extra `serve` flags.
    pub async fn start_with(config_dir: &Path, extra: &[&str]) -> Claimgate {
        let logs = tempfile::tempdir().expect("log dir");
        let mut last_logs = String::new();
        for _attempt in 0..3 {
            let (grpc, http) = (localhost(free_port()), localhost(free_port()));
            let mut cmd = Command::new(super::bin());
            cmd.arg("serve").arg("--config").arg(config_dir);
            // Extra flags may put the gRPC port on a Unix socket instead.
            if !extra.contains(&"--grpc-addr") {
                cmd.arg("--grpc-addr").arg(grpc.to_string());
            }
            cmd.arg("--http-addr")
                .arg(http.to_string())
                .args(extra)
                .env("CLAIMGATE_LOG", "debug")
                .env("NO_COLOR", "1");
            let mut process = ChildGuard::spawn("claimgate", cmd, logs.path())
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", super::bin().display()));
            let ready = wait_until(&mut process, || async move {
                matches!(try_get(http, "/readyz").await, Ok(r) if r.status == 200)
            })
            .await;
            match ready {
                Ok(()) => {
                    return Claimgate {
                        grpc,
                        http,
                        process,
                        _logs: logs,
                    }
                }
                Err(Waited::Exited) if process.logs().contains("cannot listen") => {
                    last_logs = process.logs();
                }
                Err(why) => panic!(
                    "claimgate did not become ready: {why:?}\n{}",
                    process.logs()
                ),
            }
        }
        panic!("claimgate could not bind free ports three times\n{last_logs}");
    }

    /// Start `claimgate serve --config DIR` on these addresses (to come back where a killed
    /// one was) and wait for `/readyz`; panics with the logs if it does not get there.
    pub async fn start_at(config_dir: &Path, grpc: SocketAddr, http: SocketAddr) -> Claimgate {
        let logs = tempfile::tempdir().expect("log dir");
        let mut cmd = Command::new(super::bin());
        cmd.arg("serve")
            .arg("--config")
            .arg(config_dir)
            .arg("--grpc-addr")
            .arg(grpc.to_string())
            .arg("--http-addr")
            .arg(http.to_string())
            .env("NO_COLOR", "1");
        let mut process = ChildGuard::spawn("claimgate", cmd, logs.path())
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", super::bin().display()));
        let ready = wait_until(&mut process, || async move {
            matches!(try_get(http, "/readyz").await, Ok(r) if r.status == 200)
        })
        .await;
        if let Err(why) = ready {
            panic!(
                "claimgate did not become ready: {why:?}\n{}",
                process.logs()
            );
        }
        Claimgate {
            grpc,
            http,
            process,
            _logs: logs,
        }
    }

    /// A gRPC client for its ext_authz service.
    pub async fn client(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::connect(format!("http://{}", self.grpc))
            .await
            .expect("connect to claimgate")
    }

    /// GET a path of its HTTP side.
    pub async fn get(&self, path: &str) -> HttpReply {
        http(self.http, "GET", path, &[]).await
    }

    /// Send a signal (`-HUP`, `-TERM`, …) to the process.
    pub fn signal(&self, sig: &str) {
        self.process.signal(sig);
    }

    /// Kill claimgate, as a crash would.
    pub fn stop(&mut self) {
        self.process.kill();
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Everything it wrote to stdout so far (the decision log, with `--decision-log -`).
    pub fn stdout(&self) -> String {
        self.process.stdout()
    }

    /// Everything it wrote to stderr so far (its own log, at debug level).
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// The value of one metric line of `/metrics`, e.g. `claimgate_config_generation`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let body = self.get("/metrics").await.body;
        body.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .and_then(|v| v.trim().parse().ok())
    }

    /// Wait for the process to exit by itself: its status, or `None` if it is still running
    /// after `bound`.
    pub async fn exited_within(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.process.exited() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Send SIGTERM and wait for the process to exit: its status, or `None` if it is still
    /// running after [`STOP_TIMEOUT`].
    pub async fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.process.signal("-TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.process.exited() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

#[derive(Debug)]
pub enum Waited {
    Exited,
    TimedOut,
}

/// Poll `ready` until it holds, the process exits, or `READY_TIMEOUT` passes.
pub async fn wait_until<F, Fut>(process: &mut ChildGuard, mut ready: F) -> Result<(), Waited>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if ready().await {
            // Whoever answered, this process must still be the one listening.
            return match process.exited() {
                None => Ok(()),
                Some(_) => Err(Waited::Exited),
            };
        }
        if process.exited().is_some() {
            return Err(Waited::Exited);
        }
        if Instant::now() > deadline {
            return Err(Waited::TimedOut);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// An HTTP answer as the client received it.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    /// Header names lowercased, in the order received; a repeated header appears repeatedly.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh connection, written byte for byte as given: no proxy from
/// the environment, no path normalization, repeated headers sent as repeated lines.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpReply {
    try_http(addr, request_text(method, path, headers))
        .await
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path}: {e}"))
}

/// One HTTP/2 request (cleartext, prior knowledge) over a fresh connection, with the method and
/// path exactly as given: HTTP/2 carries a lowercase method where HTTP/1.1 parsers refuse one.
pub async fn http2(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpReply {
    tokio::time::timeout(
        Duration::from_secs(10),
        try_http2(addr, method, path, headers),
    )
    .await
    .unwrap_or_else(|_| panic!("{method} {path} over HTTP/2: no answer in 10s"))
    .unwrap_or_else(|e| panic!("{method} {path} over HTTP/2: {e}"))
}

async fn try_http2(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpReply, Box<dyn std::error::Error>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (mut client, connection) = h2::client::handshake(tcp).await?;
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(http::Method::from_bytes(method.as_bytes())?)
        .uri(format!("http://claimgate.test{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (response, _) = client.send_request(request.body(())?, true)?;
    let response = response.await?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_owned(), v)
        })
        .collect();
    let mut stream = response.into_body();
    let mut body = Vec::new();
    while let Some(chunk) = stream.data().await {
        let chunk = chunk?;
        stream.flow_control().release_capacity(chunk.len())?;
        body.extend_from_slice(&chunk);
    }
    Ok(HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

pub async fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpReply> {
    try_http(addr, request_text("GET", path, &[])).await
}

fn request_text(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\nhost: claimgate.test\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    // One request per connection: the answer ends where the stream does.
    text.push_str("connection: close\r\ncontent-length: 0\r\n\r\n");
    text
}

/// Blocking socket I/O on the blocking pool, so the echo upstream, which runs on the test's
/// runtime, keeps answering while the request waits for it.
async fn try_http(addr: SocketAddr, request: String) -> std::io::Result<HttpReply> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(request.as_bytes())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        parse_reply(&answer)
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {answer:?}")))
    })
    .await
    .expect("HTTP request task")
}

fn parse_reply(answer: &[u8]) -> Option<HttpReply> {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..split]).ok()?;
    let mut body = answer[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
