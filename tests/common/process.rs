//! Child processes for tests: a guard that kills and reaps on drop, the `claimgate serve`
//! binary started on ports the system picks and waited for, and a byte-exact HTTP/1.1 client.
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

/// The listen address that lets the system pick a free port: `serve` reports the one it bound
/// in its `serving` log line ([`serving_addrs`]), so no port is released and bound again.
pub const ANY_PORT: &str = "127.0.0.1:0";

/// A port held for a listener that must be known before it exists (Envoy's demo upstream,
/// which its own cluster names; a key provider that stops and comes back): bound with
/// SO_REUSEPORT but not listening, so the system gives it to no one else and connections to it
/// are refused, while a listener that sets SO_REUSEPORT too (Envoy's do, [`reuse_port_listener`])
/// can bind it beside this socket. Drop it once nothing needs the port kept.
#[derive(Debug)]
pub struct HeldPort {
    _socket: socket2::Socket,
    pub port: u16,
}

/// Hold a free 127.0.0.1 port; see [`HeldPort`].
pub fn hold_port() -> HeldPort {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_reuse_port(true).expect("SO_REUSEPORT");
    socket.bind(&localhost(0).into()).expect("bind 127.0.0.1:0");
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("bound address")
        .port();
    HeldPort {
        _socket: socket,
        port,
    }
}

/// A listener on `addr` with SO_REUSEPORT, to listen on a [`HeldPort`]'s port.
pub fn reuse_port_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    tokio::net::TcpListener::from_std(socket.into())
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

    /// Wait for the process to exit by itself: its status, or `None` if it is still running
    /// after `bound`.
    pub async fn exited_within(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        super::eventually(bound, || {
            status = self.exited();
            std::future::ready(status.is_some())
        })
        .await;
        status
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
    /// Start `claimgate serve --config DIR` on ports the system picks and wait for `/readyz`.
    pub async fn start(config_dir: &Path) -> Claimgate {
        Self::start_with(config_dir, &[]).await
    }

    /// [`Claimgate::start`] with extra `serve` flags (which may put gRPC on a Unix socket).
    pub async fn start_with(config_dir: &Path, extra: &[&str]) -> Claimgate {
        let mut cmd = serve_command(config_dir);
        if !extra.contains(&"--grpc-addr") {
            cmd.arg("--grpc-addr").arg(ANY_PORT);
        }
        cmd.arg("--http-addr")
            .arg(ANY_PORT)
            .args(extra)
            .env("CLAIMGATE_LOG", "debug");
        Self::launch(cmd).await
    }

    /// Start `claimgate serve --config DIR` on these addresses and wait for `/readyz`; port 0
    /// lets the system pick. A fixed port is only for coming back where a killed one was, when
    /// a static Envoy config names it: the one rebind a test cannot avoid.
    pub async fn start_at(config_dir: &Path, grpc: SocketAddr, http: SocketAddr) -> Claimgate {
        let mut cmd = serve_command(config_dir);
        cmd.arg("--grpc-addr")
            .arg(grpc.to_string())
            .arg("--http-addr")
            .arg(http.to_string());
        Self::launch(cmd).await
    }

    /// Spawn `cmd`, read the addresses it bound from its log, and wait for `/readyz`; panics
    /// with the logs if it does not get there.
    async fn launch(cmd: Command) -> Claimgate {
        let logs = tempfile::tempdir().expect("log dir");
        let mut process = ChildGuard::spawn("claimgate", cmd, logs.path())
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", super::bin().display()));
        let bound = match wait_for_serving(&mut process).await {
            Ok(bound) => bound,
            Err(why) => panic!("claimgate did not bind: {why:?}\n{}", process.logs()),
        };
        let http = bound.http;
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
            grpc: bound.grpc_tcp(),
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
        self.process.exited_within(bound).await
    }

    /// Send SIGTERM and wait for the process to exit: its status, or `None` if it is still
    /// running after [`STOP_TIMEOUT`].
    pub async fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.process.signal("-TERM");
        self.process.exited_within(STOP_TIMEOUT).await
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

/// `claimgate serve --config DIR` with the output plain (no colour codes) and at info level
/// at least, whatever the caller's environment says, for the log readers.
pub fn serve_command(config_dir: &Path) -> Command {
    let mut cmd = Command::new(super::bin());
    cmd.arg("serve")
        .arg("--config")
        .arg(config_dir)
        .env("CLAIMGATE_LOG", "info")
        .env("NO_COLOR", "1");
    cmd
}

/// `claimgate serve --config DIR EXTRA…` run to its end, for a configuration it must refuse:
/// exit code and stderr. Its ports are held by this test meanwhile, so a `serve` that went as
/// far as binding fails with "cannot listen" (and the caller's assertions say so) instead of
/// serving forever; a refusal proves the configuration was judged before any port was bound.
pub fn serve_refusing(config_dir: &Path, extra: &[&str]) -> (i32, String) {
    let held = |what: &str| {
        StdListener::bind(ANY_PORT).unwrap_or_else(|e| panic!("hold a port for {what}: {e}"))
    };
    let (grpc, http) = (held("gRPC"), held("HTTP"));
    let addr = |l: &StdListener| l.local_addr().expect("held port").to_string();
    let out = serve_command(config_dir)
        .arg("--grpc-addr")
        .arg(addr(&grpc))
        .arg("--http-addr")
        .arg(addr(&http))
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", super::bin().display()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The addresses a `serve` process bound, as its `serving` log line reports them.
#[derive(Debug, Clone, Copy)]
pub struct Serving {
    /// `None` when gRPC listens on a Unix socket.
    pub grpc: Option<SocketAddr>,
    pub http: SocketAddr,
}

impl Serving {
    /// The gRPC TCP address, `0.0.0.0:0` for a Unix socket (as the server's own API says).
    pub fn grpc_tcp(&self) -> SocketAddr {
        self.grpc
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

/// The addresses in the `serving` line of a `serve` log, text or JSON; `None` before it is
/// written (the line comes once both listeners are bound).
pub fn serving_addrs(log: &str) -> Option<Serving> {
    log.lines().find_map(|line| {
        let (grpc, http) = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(json) => {
                let fields = json.get("fields")?;
                if fields.get("message")?.as_str()? != "serving" {
                    return None;
                }
                let field = |name: &str| fields.get(name)?.as_str().map(str::to_owned);
                (field("grpc_addr")?, field("http_addr")?)
            }
            Err(_) => {
                let rest = line.split_once(": serving ")?.1;
                let field = |name: &str| {
                    rest.split_whitespace()
                        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                        .map(str::to_owned)
                };
                (field("grpc_addr")?, field("http_addr")?)
            }
        };
        Some(Serving {
            grpc: grpc.parse().ok(),
            http: http.parse().ok()?,
        })
    })
}

/// Wait until `process` (a `serve`) has logged the addresses it bound.
pub async fn wait_for_serving(process: &mut ChildGuard) -> Result<Serving, Waited> {
    let stderr = process.stderr.clone();
    wait_until(process, || {
        let stderr = stderr.clone();
        async move { serving_addrs(&std::fs::read_to_string(stderr).unwrap_or_default()).is_some() }
    })
    .await?;
    serving_addrs(&process.stderr()).ok_or(Waited::Exited)
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
