//! deploy/kubernetes/ and the Dockerfile: every overlay renders with `kubectl kustomize`, every
//! rendered object validates against the Kubernetes schemas (`kubernetes-validate`, offline),
//! the alerts and the dashboard name only metrics a running claimgate exports, and ports,
//! probes, paths and the user match the binary and the image. `kubectl` and the Python package
//! are run as processes; a missing tool fails the test (scripts/test.sh installs the package).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::process::Claimgate;
use common::provider::Provider;
use common::*;
use serde_json::json;
use serde_yaml::Value as Yaml;

const OVERLAYS: [&str; 3] = ["base", "overlays/istio", "overlays/envoy-gateway"];

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

/// `kubectl kustomize` of one directory of deploy/kubernetes/, as text.
fn render(dir: &str) -> String {
    let path = root().join("deploy/kubernetes").join(dir);
    let out = Command::new("kubectl")
        .args(["kustomize", "--load-restrictor", "LoadRestrictionsNone"])
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
fn every_overlay_renders_and_every_object_validates_against_the_kubernetes_schemas() {
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

#[test]
fn ports_probes_paths_and_user_in_the_manifests_match_the_binary_and_the_image() {
    let help = Command::new(bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let grpc_port: u16 = default_of(&help, "--grpc-addr")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let http_port: u16 = default_of(&help, "--http-addr")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();

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
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    assert!(
        grace > pre_stop + 10,
        "the grace period outlasts the pause and the drain"
    );

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

    // The image: its user is the pod's, it exposes the same ports, and runs the same command.
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let user = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(
        dockerfile.contains(&format!("USER {user}:")),
        "Dockerfile USER is {user}"
    );
    assert!(dockerfile.contains(&format!("EXPOSE {grpc_port} {http_port}")));
    assert!(
        dockerfile.contains("nonroot"),
        "a distroless nonroot runtime"
    );
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/claimgate\"]"));
}

#[test]
fn the_configmap_as_mounted_is_a_valid_configuration() {
    let docs = documents(&render("base"));
    let deployment = find(&docs, "Deployment", "claimgate");
    let volume = &deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"];
    let config_map = find(&docs, "ConfigMap", volume["name"].as_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let data = config_map["data"].as_mapping().unwrap();
    let items = volume["items"].as_sequence().unwrap();
    assert_eq!(
        items.len(),
        data.len(),
        "every key of the ConfigMap is mounted"
    );
    for item in items {
        let text = data[&item["key"]].as_str().unwrap();
        let path = dir.path().join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let out = Command::new(bin())
        .args(["validate", "--config"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
