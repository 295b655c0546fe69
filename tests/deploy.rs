//! deploy/kubernetes/ and the Dockerfile: every overlay renders with plain `kubectl kustomize`
//! (the default load restrictor), every rendered object validates against the Kubernetes
//! schemas (`kubernetes-validate`, offline), the base carries no configuration and fails closed
//! while each overlay says where its configuration comes from, the alerts and the dashboard name
//! only metrics a running claimgate exports, and ports, probes, paths, shutdown timings and the
//! user match the binary and the image. `kubectl`, `strace` and the Python package are run as
//! processes; a missing tool fails the test (scripts/test.sh installs the package).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::{
    serve_command, serving_addrs, try_get, wait_for_serving, wait_until, ChildGuard, Claimgate,
    Serving, ANY_PORT,
};
use common::provider::Provider;
use common::*;
use serde_json::json;
use serde_yaml::Value as Yaml;

const OVERLAYS: [&str; 5] = [
    "base",
    "overlays/dev",
    "overlays/istio",
    "overlays/envoy-gateway",
    "overlays/git-sync",
];

/// API groups of custom resources: not in the Kubernetes schemas, so only their shape is checked.
const CUSTOM_GROUPS: [&str; 4] = [
    "monitoring.coreos.com/",
    "security.istio.io/",
    "gateway.envoyproxy.io/",
    "gateway.networking.k8s.io/",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `kubectl kustomize` of one directory of deploy/kubernetes/, as text: the default load
/// restrictor, so every file an overlay reads is inside a kustomization's own directory.
fn render(dir: &str) -> String {
    let path = root().join("deploy/kubernetes").join(dir);
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("kubectl is needed to render deploy/kubernetes: {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {dir} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 manifests")
}

fn documents(text: &str) -> Vec<Yaml> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).expect("rendered YAML parses"))
        .filter(|d: &Yaml| !d.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

const VALIDATE: &str = r#"
import sys, yaml, kubernetes_validate
custom = tuple(sys.argv[1].split(","))
version = kubernetes_validate.latest_version()
checked = 0
failures = []
for doc in yaml.safe_load_all(sys.stdin):
    if not doc:
        continue
    what = "%s/%s" % (doc.get("kind"), doc.get("metadata", {}).get("name"))
    if doc.get("apiVersion", "").startswith(custom):
        if not (doc.get("kind") and doc.get("metadata", {}).get("name") and doc.get("spec")):
            failures.append("%s: a custom resource needs kind, metadata.name and spec" % what)
        continue
    try:
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    except Exception as e:
        failures.append("%s: %s" % (what, str(e).splitlines()[0]))
for f in failures:
    print(f)
print("validated %d objects against Kubernetes %s" % (checked, version), file=sys.stderr)
sys.exit(1 if failures else 0)
"#;

#[test]
fn every_overlay_renders_with_the_default_load_restrictor_and_every_object_validates() {
    for dir in OVERLAYS {
        let rendered = render(dir);
        let mut child = Command::new("python3")
            .args(["-c", VALIDATE, &CUSTOM_GROUPS.join(",")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), rendered.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{dir}: objects fail validation (is kubernetes-validate installed? scripts/test.sh \
             installs it):\n{}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        println!("{dir}: {}", stderr.trim());
        let docs = documents(&rendered);
        let core = docs
            .iter()
            .filter(|d| {
                let api = d["apiVersion"].as_str().unwrap_or("");
                !CUSTOM_GROUPS.iter().any(|g| api.starts_with(g))
            })
            .count();
        assert!(
            stderr.contains(&format!("validated {core} objects")),
            "{dir}: every core object was validated: {stderr}"
        );
    }
}

/// Every metric name in a PromQL expression: identifiers left once label matchers, strings,
/// ranges, grouping clauses, numbers and PromQL's own words are taken out.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "rate",
        "increase",
        "histogram_quantile",
        "time",
        "offset",
        "and",
        "or",
        "unless",
        "by",
        "on",
        "without",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "clamp_min",
        "clamp_max",
        "abs",
    ];
    let mut text = String::new();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    for c in expr.chars() {
        match c {
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            _ => text.push(c),
        }
    }
    // Grouping labels: `by (a, b)`, `on(a)`, `without (a)`, `ignoring(a)`.
    let mut cleaned = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        cleaned.push_str(&rest[..i]);
        let end = rest[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(rest.len(), |e| i + e);
        let word = &rest[i..end];
        rest = &rest[end..];
        if word == "offset" {
            // Its duration (`1d`, `30m`) is not a name.
            let trimmed = rest.trim_start();
            let len = trimmed
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(trimmed.len());
            rest = &trimmed[len..];
            continue;
        }
        if ["by", "on", "without", "ignoring"].contains(&word) {
            if let (Some(open), Some(close)) = (rest.find('('), rest.find(')')) {
                if rest[..open].trim().is_empty() {
                    rest = &rest[close + 1..];
                    continue;
                }
            }
        }
        cleaned.push(' ');
        cleaned.push_str(word);
        cleaned.push(' ');
    }
    cleaned
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|w| !WORDS.contains(w))
        .map(str::to_owned)
        .collect()
}

fn exprs_in_json(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs_in_json(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| exprs_in_json(i, out)),
        _ => {}
    }
}

#[test]
fn metric_names_finds_metrics_and_skips_labels_functions_and_ranges() {
    let names = metric_names(
        r#"sum by (namespace, le) (rate(claimgate_x_bucket{a="b"}[5m] offset 1d)) > 2 * up and on(pod) other_metric"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["claimgate_x_bucket", "other_metric", "up"]
    );
}

#[tokio::test]
async fn the_alerts_and_the_dashboard_name_only_metrics_a_running_claimgate_exports() {
    tls_provider();
    // A running claimgate with a remote SSO, after allowed, denied and cached checks, so every
    // labelled series has appeared.
    let key = TestKey::generate(Kind::Es256, "k1");
    let idp = Provider::start(jwks(&[&key])).await;
    let dir = common::provider::remote_config(&idp.jwks_uri());
    let claimgate = Claimgate::start(dir.path()).await;
    let mut client = claimgate.client().await;
    let token = key.sign(&claims("ci", json!({})));
    for _ in 0..2 {
        ask(&mut client, check_bearer("GET", "/a", &token)).await;
    }
    ask(&mut client, check_bearer("GET", "/a", "not-a-token")).await;
    dir.write("broken.yaml", "routes: [");
    claimgate.signal("-HUP");
    let reloaded = eventually(std::time::Duration::from_secs(10), || async {
        claimgate
            .get("/metrics")
            .await
            .body
            .contains("claimgate_config_reloads_total{result=\"failure\"} 1")
    })
    .await;
    assert!(reloaded, "{}", claimgate.logs());
    let scraped = claimgate.get("/metrics").await.body;
    let exported: BTreeSet<String> = scraped
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();

    let docs = documents(&render("overlays/istio"));
    let mut exprs: Vec<(String, String)> = Vec::new();
    let rules = find(&docs, "PrometheusRule", "claimgate");
    for group in rules["spec"]["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let alert = rule["alert"].as_str().unwrap().to_owned();
            exprs.push((alert, rule["expr"].as_str().unwrap().to_owned()));
        }
    }
    let alerts: BTreeSet<&str> = exprs.iter().map(|(a, _)| a.as_str()).collect();
    for wanted in [
        "ClaimgateConfigReloadFailing",
        "ClaimgateKeyRefreshFailing",
        "ClaimgateKeysStale",
        "ClaimgateNotReady",
        "ClaimgateDenyRateJump",
        "ClaimgateCheckLatencyHigh",
    ] {
        assert!(alerts.contains(wanted), "alert {wanted} exists");
    }
    let dashboard = find(&docs, "ConfigMap", "claimgate-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json: serde_json::Value =
        serde_json::from_str(dashboard["data"]["claimgate.json"].as_str().unwrap()).unwrap();
    let mut panel_exprs = Vec::new();
    exprs_in_json(&json, &mut panel_exprs);
    assert!(panel_exprs.len() >= 8, "the dashboard has its panels");
    exprs.extend(panel_exprs.into_iter().map(|e| ("dashboard".to_owned(), e)));

    let mut named = BTreeSet::new();
    for (whose, expr) in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{whose}: {expr} names a metric");
        for name in names {
            assert!(
                exported.contains(&name),
                "{whose}: {name} is not exported by claimgate (exported: {exported:?})"
            );
            named.insert(name);
        }
    }
    println!(
        "alerts and dashboard name {} exported series: {named:?}",
        named.len()
    );
}

/// The value after `[default: ` in `claimgate serve --help` for a flag.
fn default_of(help: &str, flag: &str) -> String {
    let at = help
        .find(flag)
        .unwrap_or_else(|| panic!("--help lists {flag}"));
    let rest = &help[at..];
    let start = rest.find("[default: ").expect("a default") + "[default: ".len();
    rest[start..start + rest[start..].find(']').unwrap()].to_owned()
}

/// The binary's default gRPC and HTTP ports, from `claimgate serve --help`.
fn default_ports() -> (u16, u16) {
    let help = Command::new(bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let port = |flag: &str| -> u16 {
        default_of(&help, flag)
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (port("--grpc-addr"), port("--http-addr"))
}

#[test]
fn ports_probes_paths_and_hardening_in_the_manifests_match_the_binary() {
    let (grpc_port, http_port) = default_ports();

    let docs = documents(&render("overlays/istio"));
    let deployment = find(&docs, "Deployment", "claimgate");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let port = |name: &str| {
        container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("container port {name}"))
    };
    assert_eq!(port("grpc"), u64::from(grpc_port));
    assert_eq!(port("http-metrics"), u64::from(http_port));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            container[probe]["httpGet"]["port"], "http-metrics",
            "{probe}"
        );
    }
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&format!("--grpc-addr=0.0.0.0:{grpc_port}").as_str()));
    assert!(args.contains(&format!("--http-addr=0.0.0.0:{http_port}").as_str()));
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(
        args.contains(&format!("--config={mount}").as_str()),
        "{args:?}"
    );

    // The hardening the issue lists.
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let sc = &container["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(pod["topologySpreadConstraints"]
        .as_sequence()
        .is_some_and(|t| !t.is_empty()));

    // The Service names its ports for protocol detection and maps them onto the container's.
    let service = find(&docs, "Service", "claimgate");
    for (name, number, protocol) in [
        ("grpc", grpc_port, "grpc"),
        ("http-metrics", http_port, "http"),
    ] {
        let p = service["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("Service port {name}"));
        assert_eq!(p["port"].as_u64(), Some(u64::from(number)));
        assert_eq!(p["targetPort"], name);
        assert_eq!(p["appProtocol"], protocol);
    }
    let monitor = find(&docs, "ServiceMonitor", "claimgate");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let policy = find(&docs, "NetworkPolicy", "claimgate");
    assert_eq!(
        policy["spec"]["ingress"][0]["ports"][0]["port"].as_u64(),
        Some(u64::from(grpc_port))
    );
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
            ["kubernetes.io/metadata.name"],
        "istio-system"
    );
    // The mesh's extension provider and the Envoy Gateway policy reach this Service.
    let mesh: Yaml = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("envoy/istio/mesh-config.yaml")).unwrap(),
    )
    .unwrap();
    let provider = &mesh["spec"]["meshConfig"]["extensionProviders"][0]["envoyExtAuthzGrpc"];
    assert_eq!(provider["service"], "claimgate.claimgate.svc.cluster.local");
    assert_eq!(provider["port"].as_u64(), Some(u64::from(grpc_port)));
    let eg = documents(&render("overlays/envoy-gateway"));
    let backend =
        &find(&eg, "SecurityPolicy", "claimgate")["spec"]["extAuth"]["grpc"]["backendRefs"][0];
    assert_eq!(backend["name"], "claimgate");
    assert_eq!(backend["namespace"], "claimgate");
    assert_eq!(backend["port"].as_u64(), Some(u64::from(grpc_port)));
}

/// The claimgate Deployment of a rendering.
fn deployment(docs: &[Yaml]) -> &Yaml {
    find(docs, "Deployment", "claimgate")
}

/// A container of the Deployment's pod, by name.
fn container<'a>(deployment: &'a Yaml, name: &str) -> &'a Yaml {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn args(container: &Yaml) -> Vec<String> {
    container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// The value of `--NAME=VALUE` among `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    args.iter().find_map(|a| a.strip_prefix(&prefix))
}

/// The mount path of a container's volume.
fn mount_path<'a>(container: &'a Yaml, volume: &str) -> &'a str {
    container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume)
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or_else(|| panic!("no mount of {volume}"))
}

/// The pod's volume `name`.
fn volume<'a>(deployment: &'a Yaml, name: &str) -> &'a Yaml {
    deployment["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
}

/// The keys of a ConfigMap's data that claimgate reads as configuration.
fn yaml_keys(config_map: &Yaml) -> BTreeSet<String> {
    config_map["data"]
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str())
                .filter(|k| k.ends_with(".yaml") || k.ends_with(".yml"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Write the configuration directory as the kubelet mounts the `config` volume's ConfigMap:
/// every key, or the `items` it names, each at its path.
fn mount_config(docs: &[Yaml]) -> tempfile::TempDir {
    let config = &volume(deployment(docs), "config")["configMap"];
    let config_map = find(docs, "ConfigMap", config["name"].as_str().unwrap());
    let data = config_map["data"].as_mapping().cloned().unwrap_or_default();
    let items: Vec<(String, String)> = match config["items"].as_sequence() {
        Some(items) => items
            .iter()
            .map(|i| {
                let key = i["key"].as_str().unwrap().to_owned();
                (key, i["path"].as_str().unwrap().to_owned())
            })
            .collect(),
        None => data
            .keys()
            .map(|k| {
                (
                    k.as_str().unwrap().to_owned(),
                    k.as_str().unwrap().to_owned(),
                )
            })
            .collect(),
    };
    let dir = tempfile::tempdir().unwrap();
    for (key, path) in items {
        let text = data
            .get(key.as_str())
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("the ConfigMap has the mounted key {key}"));
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn the_base_carries_no_configuration_and_each_overlay_says_where_its_comes_from() {
    let example: BTreeSet<String> = std::fs::read_dir(root().join("config"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    assert!(!example.is_empty());
    for dir in OVERLAYS {
        let docs = documents(&render(dir));
        let deployment = deployment(&docs);
        let claimgate = container(deployment, "claimgate");
        let args = args(claimgate);
        let dev = args.iter().filter(|a| *a == "--dev").count();
        let config_map = docs
            .iter()
            .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "claimgate-config");
        let config = flag(&args, "--config").expect("--config");
        let mount = mount_path(claimgate, "config");
        assert!(
            Path::new(config).starts_with(mount),
            "{dir}: --config={config} is on the config volume ({mount})"
        );
        match dir {
            "overlays/dev" => {
                // The example, every file of it, with the flag that lets it trust the dev key.
                let config_map = config_map.expect("dev: a ConfigMap");
                assert_eq!(yaml_keys(config_map), example, "dev: every config/*.yaml");
                assert_eq!(dev, 1, "dev: serve --dev");
            }
            "overlays/git-sync" => {
                assert!(config_map.is_none(), "git-sync: no ConfigMap");
                assert_eq!(dev, 0, "git-sync: no --dev");
                assert!(volume(deployment, "config")["emptyDir"].is_mapping());
                assert_eq!(claimgate["volumeMounts"][0]["readOnly"], true);
                // git-sync writes the volume; claimgate reads git-sync's link.
                let pod = &deployment["spec"]["template"]["spec"];
                let init = &pod["initContainers"][0];
                let sidecar = container(deployment, "git-sync");
                for git_sync in [init, sidecar] {
                    let image = git_sync["image"].as_str().unwrap();
                    assert!(
                        image.starts_with("registry.k8s.io/git-sync/git-sync:v4."),
                        "{image}"
                    );
                    let gargs = self::args(git_sync);
                    let root = flag(&gargs, "--root").expect("--root");
                    let link = flag(&gargs, "--link").expect("--link");
                    assert_eq!(mount_path(git_sync, "config"), root);
                    assert_eq!(config, format!("{root}/{link}"), "--config is the link");
                    assert_eq!(git_sync["securityContext"]["readOnlyRootFilesystem"], true);
                    assert_eq!(mount_path(git_sync, "git-sync-tmp"), "/tmp");
                }
                assert!(self::args(init).contains(&"--one-time".to_owned()));
            }
            _ => {
                // The base's ConfigMap, which holds no configuration file.
                let config_map = config_map.expect("a ConfigMap");
                assert!(
                    yaml_keys(config_map).is_empty(),
                    "{dir}: no configuration of the repository's: {:?}",
                    yaml_keys(config_map)
                );
                assert_eq!(dev, 0, "{dir}: no --dev");
            }
        }
    }
}

#[test]
fn the_dev_overlay_configmap_as_mounted_is_the_example_configuration() {
    let docs = documents(&render("overlays/dev"));
    let dir = mount_config(&docs);
    for name in [
        "sso.yaml",
        "identities.yaml",
        "resources.yaml",
        "routes.yaml",
    ] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(name)).unwrap(),
            std::fs::read_to_string(root().join("config").join(name)).unwrap(),
            "{name}"
        );
    }
    let (code, stdout, stderr) = run(&["validate", "--config", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}

#[tokio::test]
async fn the_base_alone_denies_every_request_and_says_why() {
    let docs = documents(&render("base"));
    let dir = mount_config(&docs);
    let logs = tempfile::tempdir().unwrap();
    let mut cmd = serve_command(dir.path());
    cmd.arg(format!("--grpc-addr={ANY_PORT}"))
        .arg(format!("--http-addr={ANY_PORT}"));
    let mut process = ChildGuard::spawn("claimgate", cmd, logs.path()).unwrap();
    let bound = wait_for_serving(&mut process).await;
    let Ok(Serving {
        grpc: Some(grpc),
        http,
    }) = bound
    else {
        panic!(
            "serve did not bind TCP ports: {bound:?}\n{}",
            process.logs()
        );
    };
    let answering = wait_until(&mut process, || async move {
        try_get(http, "/readyz").await.is_ok()
    })
    .await;
    assert!(answering.is_ok(), "{}", process.logs());

    let ready = try_get(http, "/readyz").await.unwrap();
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready.body.contains("no configuration supplied") && ready.body.contains("overlay"),
        "/readyz says why and how to supply one: {}",
        ready.body
    );
    assert!(
        process.logs().contains("no configuration supplied"),
        "the log says why: {}",
        process.logs()
    );
    assert_eq!(try_get(http, "/healthz").await.unwrap().status, 200);
    // Envoy's and Kubernetes' gRPC health checks see the same.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        serving,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );

    // Every request is denied: routed, with a token, or naming its resource itself.
    let mut client =
        envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient::connect(
            format!("http://{grpc}"),
        )
        .await
        .unwrap();
    let key = TestKey::generate(Kind::Rs256, "k1");
    let token = key.sign(&claims("ci", json!({})));
    for request in [
        check("GET", "/", &[]),
        check("GET", "/healthz", &[]),
        check_bearer("POST", "/v1/models/acme/llama", &token),
        with_context(
            check_bearer("GET", "/x", &token),
            &[("resource", "model:a"), ("role", "viewer")],
        ),
    ] {
        let answer = ask(&mut client, request).await;
        assert_eq!(answer.status, 503);
        assert_eq!(answer.reason(), "not_ready");
    }
}

#[test]
fn the_shutdown_delay_and_drain_fit_in_the_termination_grace_period() {
    for dir in OVERLAYS {
        let docs = documents(&render(dir));
        let deployment = deployment(&docs);
        let pod = &deployment["spec"]["template"]["spec"];
        let claimgate = container(deployment, "claimgate");
        let args = args(claimgate);
        let seconds = |name: &str| {
            let value = flag(&args, name).unwrap_or_else(|| panic!("{dir}: {name}"));
            humantime::parse_duration(value)
                .unwrap_or_else(|e| panic!("{dir}: {name}={value}: {e}"))
        };
        let (delay, grace) = (seconds("--shutdown-delay"), seconds("--shutdown-grace"));
        let period = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap());
        assert!(
            delay > Duration::ZERO,
            "{dir}: endpoints are removed before the drain"
        );
        assert!(
            delay + grace < period,
            "{dir}: delay {delay:?} + grace {grace:?} < terminationGracePeriodSeconds {period:?}"
        );
        // The delay is claimgate's own: a preStop sleep would need Kubernetes 1.30.
        assert!(
            claimgate["lifecycle"]["preStop"].is_null(),
            "{dir}: no preStop"
        );
    }
}

/// The Dockerfile's final stage: each instruction's keyword and its arguments, in order.
fn final_stage(dockerfile: &str) -> Vec<(String, String)> {
    let mut stage = Vec::new();
    let joined = dockerfile.replace("\\\n", " ");
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "FROM" {
            stage.clear();
        }
        stage.push((keyword, rest.trim().to_owned()));
    }
    stage
}

/// The one argument of an instruction in the final stage.
fn instruction<'a>(stage: &'a [(String, String)], keyword: &str) -> &'a str {
    let found: Vec<&str> = stage
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {keyword} in the final stage: {found:?}"
    );
    found[0]
}

#[test]
fn the_image_agrees_with_the_manifests_and_the_binary() {
    let (grpc_port, http_port) = default_ports();
    let stage = final_stage(&std::fs::read_to_string(root().join("Dockerfile")).unwrap());
    let base = instruction(&stage, "FROM");
    assert!(
        base == "scratch" || (base.starts_with("gcr.io/distroless/") && base.ends_with(":nonroot")),
        "a minimal runtime, distroless nonroot or scratch: {base}"
    );
    let user = instruction(&stage, "USER");
    let exposed: BTreeSet<u16> = instruction(&stage, "EXPOSE")
        .split_whitespace()
        .map(|p| p.trim_end_matches("/tcp").parse().unwrap())
        .collect();
    assert_eq!(
        exposed,
        BTreeSet::from([grpc_port, http_port]),
        "the binary's ports"
    );
    let entrypoint: Vec<String> = serde_json::from_str(instruction(&stage, "ENTRYPOINT")).unwrap();
    let cmd: Vec<String> = serde_json::from_str(instruction(&stage, "CMD")).unwrap();
    let copied = instruction(&stage, "COPY");
    assert!(
        copied.ends_with(&format!(" {}", entrypoint[0])),
        "the binary is copied where ENTRYPOINT runs it: {copied}"
    );
    assert_eq!(cmd[0], "serve");
    let cmd_config = cmd
        .iter()
        .position(|a| a == "--config")
        .map(|i| cmd[i + 1].clone())
        .expect("CMD names --config");

    for dir in OVERLAYS {
        let docs = documents(&render(dir));
        let deployment = deployment(&docs);
        let pod = &deployment["spec"]["template"]["spec"];
        let claimgate = container(deployment, "claimgate");
        assert_eq!(
            user,
            format!(
                "{}:{}",
                pod["securityContext"]["runAsUser"].as_u64().unwrap(),
                pod["securityContext"]["runAsGroup"].as_u64().unwrap()
            ),
            "{dir}: the image's USER is the pod's runAsUser:runAsGroup"
        );
        let ports: BTreeSet<u16> = claimgate["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| p["containerPort"].as_u64().unwrap() as u16)
            .collect();
        assert_eq!(ports, exposed, "{dir}: container ports = EXPOSE");
        assert_eq!(args(claimgate)[0], cmd[0], "{dir}: the same subcommand");
        assert_eq!(
            mount_path(claimgate, "config"),
            cmd_config,
            "{dir}: the image's default --config is the config volume"
        );
        assert_eq!(claimgate["securityContext"]["readOnlyRootFilesystem"], true);
        // Nothing else is writable in the container: the binary must write no file at all
        // (checked below).
        let mounts = claimgate["volumeMounts"].as_sequence().unwrap();
        assert!(
            mounts.iter().all(|m| m["readOnly"] == true),
            "{dir}: every mount of claimgate's is read-only"
        );
    }
}

/// Stops and reaps a process started outside [`ChildGuard`] (strace, whose tracee is
/// signalled on its own).
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_writes_no_file_so_a_read_only_root_filesystem_suffices() {
    // Every system call that creates, changes or removes a file, and every open for writing.
    const WRITES: &str = "creat,open,openat,openat2,mkdir,mkdirat,rename,renameat,renameat2,\
        unlink,unlinkat,link,linkat,symlink,symlinkat,truncate,chmod,fchmodat,chown,fchownat,\
        mknod,mknodat,utimensat";
    let key = TestKey::generate(Kind::Rs256, "k1");
    let dir = ConfigDir::new();
    dir.write("jwks.json", &jwks(&[&key]));
    dir.write("sso.yaml", &sso_yaml("[RS256]"));
    dir.write(
        "identities.yaml",
        "external_identities:\n  - name: bot\n    sso_fqn: test-idp\n",
    );
    dir.write("resources.yaml", "resources:\n  - fqn: model:a\n    collaborators:\n      - {subject: external-identity:bot, role: viewer}\n");
    dir.write(
        "routes.yaml",
        "routes:\n  - path: /a\n    resource: model:a\n    role: viewer\n",
    );
    let out = tempfile::tempdir().unwrap();
    let trace = out.path().join("trace");
    let strace = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .args(["-e", &format!("trace={WRITES}")])
        .arg(bin())
        .arg("serve")
        .arg("--config")
        .arg(dir.path())
        .arg(format!("--grpc-addr={ANY_PORT}"))
        .arg(format!("--http-addr={ANY_PORT}"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(out.path().join("stderr")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("strace is needed to watch the binary's file writes: {e}"));
    let mut strace = Reap(strace);
    let log = || std::fs::read_to_string(out.path().join("stderr")).unwrap_or_default();
    let mut bound = None;
    let serving = eventually(Duration::from_secs(30), || {
        bound = serving_addrs(&log());
        std::future::ready(bound.is_some())
    })
    .await;
    assert!(
        serving,
        "serve did not log the addresses it bound\n{}",
        log()
    );
    let Some(Serving {
        grpc: Some(grpc),
        http,
    }) = bound
    else {
        panic!("serve did not bind TCP ports\n{}", log());
    };
    let ready = eventually(Duration::from_secs(30), || async {
        matches!(try_get(http, "/readyz").await, Ok(r) if r.status == 200)
    })
    .await;
    assert!(ready, "{}", log());

    // What a pod does: probes, scrapes, checks, a reload, then SIGTERM.
    let mut client =
        envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient::connect(
            format!("http://{grpc}"),
        )
        .await
        .unwrap();
    let token = key.sign(&claims("ci", json!({})));
    assert_eq!(
        ask(&mut client, check_bearer("GET", "/a", &token))
            .await
            .status,
        200
    );
    assert_eq!(ask(&mut client, check("GET", "/a", &[])).await.status, 401);
    assert_eq!(try_get(http, "/metrics").await.unwrap().status, 200);
    dir.write(
        "routes.yaml",
        "routes:\n  - path: /b\n    resource: model:a\n    role: viewer\n",
    );
    let reloaded = eventually(Duration::from_secs(10), || {
        let mut client = client.clone();
        let token = token.clone();
        async move {
            ask(&mut client, check_bearer("GET", "/b", &token))
                .await
                .status
                == 200
        }
    })
    .await;
    assert!(reloaded, "{}", log());
    let tracee = std::fs::read_to_string(format!(
        "/proc/{pid}/task/{pid}/children",
        pid = strace.0.id()
    ))
    .unwrap();
    let tracee = tracee
        .split_whitespace()
        .next()
        .expect("strace runs claimgate");
    assert!(Command::new("kill")
        .args(["-TERM", tracee])
        .status()
        .unwrap()
        .success());
    let exited = eventually(Duration::from_secs(10), || {
        let done = strace.0.try_wait().ok().flatten().is_some();
        async move { done }
    })
    .await;
    assert!(exited, "claimgate exits on SIGTERM: {}", log());

    let calls = std::fs::read_to_string(&trace).unwrap();
    let writes: Vec<&str> = calls
        .lines()
        .filter(|l| {
            let opens = ["open(", "openat(", "openat2("]
                .iter()
                .any(|o| l.contains(o));
            let writing = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                .iter()
                .any(|f| l.contains(f));
            // A call strace shows in two parts is judged by its first ("<unfinished ...>").
            let resumed = l.contains(" resumed>");
            // A thread still inside a call when the process exits shows as `???( <detached ...>`.
            let noise =
                l.contains("+++ exited") || l.contains("--- SIG") || l.contains("<detached ...>");
            !resumed && !noise && (!opens || writing)
        })
        .collect();
    assert!(
        writes.is_empty(),
        "claimgate serve wrote to the file system: {writes:#?}"
    );
}
