//! Hot reload with real files and the real server over gRPC.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use claimgate::server::reload::ReloadOptions;
use common::*;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use serde_json::json;
use tonic::transport::Channel;

const BOUND: Duration = Duration::from_secs(2);

const IDENTITIES: &str = "external_identities:\n  - name: bot\n    sso_fqn: test-idp\n    claims:\n      repository: acme/api\n";
const RESOURCES_EDITOR: &str = "resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: editor\n";
const RESOURCES_VIEWER: &str = "resources:\n  - fqn: model:a\n    collaborators:\n      - subject: external-identity:bot\n        role: viewer\n";
const RESOURCES_NONE: &str = "resources:\n  - fqn: model:a\n";
const ROUTES: &str = "routes:\n  - path: /a\n    methods: [GET]\n    resource: model:a\n    role: viewer\n  - path: /a\n    methods: [POST]\n    resource: model:a\n    role: editor\n";
const EXTRA: &str = "resources:\n  - fqn: model:b\n    collaborators:\n      - subject: external-identity:bot\n        role: viewer\nroutes:\n  - path: /b\n    resource: model:b\n    role: viewer\n";

struct Setup {
    dir: ConfigDir,
    key: TestKey,
    token: String,
}

fn setup() -> Setup {
    let key = TestKey::generate(Kind::Rs256, "k1");
    let dir = ConfigDir::new();
    dir.write("jwks.json", &jwks(&[&key]));
    dir.write("sso.yaml", &sso_yaml("[RS256]"));
    dir.write("identities.yaml", IDENTITIES);
    dir.write("resources.yaml", RESOURCES_EDITOR);
    dir.write("routes.yaml", ROUTES);
    let token = key.sign(&claims("bot-run", json!({"repository": "acme/api"})));
    Setup { dir, key, token }
}

async fn becomes(
    c: &AuthorizationClient<Channel>,
    token: &str,
    method: &str,
    path: &str,
    want: (u16, &str),
) -> bool {
    eventually(BOUND, || {
        let mut c = c.clone();
        async move { role_or_reason(&mut c, token, method, path).await == (want.0, want.1.to_string()) }
    })
    .await
}

#[tokio::test]
async fn an_in_place_write_takes_effect() {
    let s = setup();
    let server = TestServer::start(s.dir.path()).await;
    let c = server.client().await;
    assert!(becomes(&c, &s.token, "POST", "/a", (200, "editor")).await);
    std::fs::write(s.dir.path().join("resources.yaml"), RESOURCES_VIEWER).unwrap();
    assert!(becomes(&c, &s.token, "POST", "/a", (403, "insufficient_role")).await);
    assert!(becomes(&c, &s.token, "GET", "/a", (200, "viewer")).await);
    assert_eq!(
        server.metric("claimgate_config_generation").await,
        Some(2.0)
    );
    assert_eq!(
        server
            .metric(r#"claimgate_config_reloads_total{result="success"}"#)
            .await,
        Some(2.0)
    );
    server.stop().await;
}

#[tokio::test]
async fn an_editor_rename_save_takes_effect() {
    let s = setup();
    let server = TestServer::start(s.dir.path()).await;
    let c = server.client().await;
    let tmp = s.dir.write(".resources.yaml.swp", RESOURCES_VIEWER);
    std::fs::rename(tmp, s.dir.path().join("resources.yaml")).unwrap();
    assert!(becomes(&c, &s.token, "POST", "/a", (403, "insufficient_role")).await);
    server.stop().await;
}

#[tokio::test]
async fn adding_and_deleting_a_file_take_effect() {
    let s = setup();
    let server = TestServer::start(s.dir.path()).await;
    let c = server.client().await;
    assert!(becomes(&c, &s.token, "GET", "/b", (403, "no_route")).await);
    let extra = s.dir.write("extra.yml", EXTRA);
    assert!(becomes(&c, &s.token, "GET", "/b", (200, "viewer")).await);
    std::fs::remove_file(extra).unwrap();
    assert!(becomes(&c, &s.token, "GET", "/b", (403, "no_route")).await);
    server.stop().await;
}

#[tokio::test]
async fn editing_only_the_key_file_takes_effect() {
    let s = setup();
    let server = TestServer::start(s.dir.path()).await;
    let c = server.client().await;
    let rotated = TestKey::generate(Kind::Es256, "k2");
    let new_token = rotated.sign(&claims("bot-run", json!({"repository": "acme/api"})));
    s.dir.write("sso.yaml", &sso_yaml("[RS256, ES256]"));
    assert!(becomes(&c, &new_token, "GET", "/a", (401, "unknown_key")).await);
    s.dir.write("jwks.json", &jwks(&[&s.key, &rotated]));
    assert!(becomes(&c, &new_token, "GET", "/a", (200, "editor")).await);
    server.stop().await;
}

fn version_files<'a>(
    jwks: &'a str,
    sso: &'a str,
    resources: &'a str,
    routes: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("jwks.json", jwks),
        ("sso.yaml", sso),
        ("identities.yaml", IDENTITIES),
        ("resources.yaml", resources),
        ("routes.yaml", routes),
    ]
}

#[tokio::test]
async fn a_configmap_data_symlink_swap_takes_effect() {
    let key = TestKey::generate(Kind::Rs256, "k1");
    let token = key.sign(&claims("bot-run", json!({"repository": "acme/api"})));
    let dir = ConfigDir::new();
    let (keys, sso) = (jwks(&[&key]), sso_yaml("[RS256]"));
    configmap::version(
        dir.path(),
        "2026_11_29_10_00_00.1",
        &version_files(&keys, &sso, RESOURCES_EDITOR, ROUTES),
    );
    configmap::swap(dir.path(), "2026_11_29_10_00_00.1");
    let server = TestServer::start(dir.path()).await;
    let c = server.client().await;
    assert!(becomes(&c, &token, "POST", "/a", (200, "editor")).await);
    configmap::version(
        dir.path(),
        "2026_11_29_10_05_00.2",
        &version_files(&keys, &sso, RESOURCES_VIEWER, ROUTES),
    );
    configmap::swap(dir.path(), "2026_11_29_10_05_00.2");
    std::fs::remove_dir_all(dir.path().join("..2026_11_29_10_00_00.1")).unwrap();
    assert!(becomes(&c, &token, "POST", "/a", (403, "insufficient_role")).await);
    server.stop().await;
}

/// git-sync v4's layout (kubernetes/git-sync, `publishSymlink` and `removeStaleWorktrees`):
/// each commit is checked out to `ROOT/.worktrees/HASH` (with a `.git` file naming the
/// repository), a new link `ROOT/tmp-link -> .worktrees/HASH` is renamed over `ROOT/LINK`, and
/// the worktree it replaced is removed.
mod git_sync {
    use std::path::Path;

    /// Check out `files` (path in the repository, content) as the worktree of `hash`.
    pub fn worktree(root: &Path, hash: &str, files: &[(&str, &str)]) {
        let tree = root.join(".worktrees").join(hash);
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(
            tree.join(".git"),
            format!("gitdir: ../../.git/worktrees/{hash}\n"),
        )
        .unwrap();
        for (path, content) in files {
            let file = tree.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, content).unwrap();
        }
    }

    /// Point `ROOT/link` at `hash`'s worktree, then remove the one it pointed at before.
    pub fn publish(root: &Path, link: &str, hash: &str) {
        let previous = std::fs::read_link(root.join(link)).ok();
        let tmp = root.join("tmp-link");
        std::os::unix::fs::symlink(format!(".worktrees/{hash}"), &tmp).unwrap();
        std::fs::rename(&tmp, root.join(link)).unwrap();
        if let Some(previous) = previous {
            std::fs::remove_dir_all(root.join(previous)).unwrap();
        }
    }
}

/// One commit of a configuration repository: the test configuration under `prefix`.
fn commit_files<'a>(prefix: &str, files: &[(&'a str, &'a str)]) -> Vec<(String, &'a str)> {
    files
        .iter()
        .map(|(name, text)| (format!("{prefix}{name}"), *text))
        .collect()
}

/// `--config` names git-sync's link (or a directory inside the checkout, through it): every
/// published commit takes effect, the second and third as promptly as the first.
async fn git_sync_swaps_take_effect(prefix: &str) {
    let key = TestKey::generate(Kind::Rs256, "k1");
    let token = key.sign(&claims("bot-run", json!({"repository": "acme/api"})));
    let root = ConfigDir::new();
    let (keys, sso) = (jwks(&[&key]), sso_yaml("[RS256]"));
    let commits = [
        (
            "1111111111111111111111111111111111111111",
            RESOURCES_EDITOR,
            (200, "editor"),
        ),
        (
            "2222222222222222222222222222222222222222",
            RESOURCES_VIEWER,
            (403, "insufficient_role"),
        ),
        (
            "3333333333333333333333333333333333333333",
            RESOURCES_EDITOR,
            (200, "editor"),
        ),
    ];
    let config = root.path().join("config").join(prefix);
    let server = TestServer::builder(&config).start();
    let mut server = Some(server);
    let mut running = None;
    for (hash, resources, want) in commits {
        let files = commit_files(prefix, &version_files(&keys, &sso, resources, ROUTES));
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), *t)).collect();
        git_sync::worktree(root.path(), hash, &files);
        git_sync::publish(root.path(), "config", hash);
        if let Some(start) = server.take() {
            running = Some(start.await);
        }
        let c = running.as_ref().unwrap().client().await;
        assert!(
            becomes(&c, &token, "POST", "/a", want).await,
            "commit {hash} takes effect within {BOUND:?}"
        );
    }
    running.unwrap().stop().await;
}

#[tokio::test]
async fn git_sync_link_swaps_take_effect() {
    git_sync_swaps_take_effect("").await;
}

#[tokio::test]
async fn git_sync_swaps_take_effect_in_a_directory_of_the_checkout() {
    git_sync_swaps_take_effect("claimgate/").await;
}

#[tokio::test]
async fn invalid_edits_are_refused_and_the_last_good_config_keeps_serving() {
    let s = setup();
    let server = TestServer::start(s.dir.path()).await;
    let c = server.client().await;
    let bad_edits = [
        (
            "resources.yaml",
            "resources:\n  - fqn: model:a\n    collaborators: [\n",
        ),
        (
            "routes.yaml",
            "routes:\n  - path: /a\n    resource: model:unknown\n    role: viewer\n",
        ),
        (
            "more.yaml",
            "external_identities:\n  - name: bot\n    sso_fqn: test-idp\n",
        ),
        (
            "identities.yaml",
            "external_identities:\n  - name: bot\n    sso_fqn: nope\n",
        ),
    ];
    for (i, (file, content)) in bad_edits.iter().enumerate() {
        let original = std::fs::read_to_string(s.dir.path().join(file)).ok();
        s.dir.write(file, content);
        let failures = (i + 1) as f64;
        let refused = eventually(BOUND, || async {
            server
                .metric(r#"claimgate_config_reloads_total{result="failure"}"#)
                .await
                == Some(failures)
        })
        .await;
        assert!(refused, "{file}: the reload failure is counted");
        assert_eq!(
            server
                .metric("claimgate_config_last_reload_successful")
                .await,
            Some(0.0)
        );
        let mut c2 = c.clone();
        assert_eq!(
            role_or_reason(&mut c2, &s.token, "POST", "/a").await,
            (200, "editor".to_string()),
            "{file}"
        );
        assert_eq!(server.store.generation(), 1);
        // Fixing it recovers.
        match original {
            Some(text) => s.dir.write(file, &text),
            None => {
                std::fs::remove_file(s.dir.path().join(file)).unwrap();
                s.dir.path().join(file)
            }
        };
        assert!(
            eventually(BOUND, || async {
                server
                    .metric("claimgate_config_last_reload_successful")
                    .await
                    == Some(1.0)
            })
            .await,
            "{file}: fixing it recovers"
        );
    }
    // A last, valid edit is taken.
    std::fs::write(s.dir.path().join("resources.yaml"), RESOURCES_VIEWER).unwrap();
    assert!(becomes(&c, &s.token, "POST", "/a", (403, "insufficient_role")).await);
    server.stop().await;
}

#[tokio::test]
async fn revoking_a_collaborator_denies_within_the_bound() {
    let s = setup();
    let server = TestServer::start(s.dir.path()).await;
    let c = server.client().await;
    assert!(becomes(&c, &s.token, "GET", "/a", (200, "editor")).await);
    std::fs::write(s.dir.path().join("resources.yaml"), RESOURCES_NONE).unwrap();
    assert!(becomes(&c, &s.token, "GET", "/a", (403, "insufficient_role")).await);
    server.stop().await;
}

#[tokio::test]
async fn deleting_an_identity_removes_its_access_and_is_not_refused() {
    let s = setup();
    let server = TestServer::start(s.dir.path()).await;
    let c = server.client().await;
    std::fs::write(
        s.dir.path().join("identities.yaml"),
        "external_identities:\n  - name: other\n    sso_fqn: test-idp\n    claims: {repository: acme/web}\n",
    )
    .unwrap();
    assert!(becomes(&c, &s.token, "GET", "/a", (403, "no_identity")).await);
    assert_eq!(
        server
            .metric("claimgate_config_last_reload_successful")
            .await,
        Some(1.0)
    );
    assert_eq!(server.store.generation(), 2);
    server.stop().await;
}

#[tokio::test]
async fn identical_content_swaps_nothing() {
    let s = setup();
    let server = TestServer::start(s.dir.path()).await;
    // A refused edit first, so that the reload of the content below shows: it sets the last
    // reload back to successful without a swap (no wait can prove that nothing happened).
    // The edit is written again until it is refused: the watcher starts with the server's
    // task, so a write right after the start can come before it.
    let refused = eventually(Duration::from_secs(10), || async {
        s.dir.write(
            "resources.yaml",
            "resources:\n  - fqn: model:a\n    collaborators: [\n",
        );
        server
            .metric(r#"claimgate_config_reloads_total{result="failure"}"#)
            .await
            .is_some_and(|n| n >= 1.0)
    })
    .await;
    assert!(refused, "the broken edit is refused");
    std::fs::write(s.dir.path().join("resources.yaml"), RESOURCES_EDITOR).unwrap();
    s.dir.write("notes.txt", "not a config file");
    assert!(
        eventually(Duration::from_secs(10), || async {
            server
                .metric("claimgate_config_last_reload_successful")
                .await
                == Some(1.0)
        })
        .await
    );
    assert_eq!(server.store.generation(), 1);
    assert_eq!(
        server
            .metric(r#"claimgate_config_reloads_total{result="success"}"#)
            .await,
        Some(1.0)
    );
    server.stop().await;
}

/// The answer Envoy would act on, reduced to what a version decides.
async fn answer(
    c: &mut AuthorizationClient<Channel>,
    token: &str,
    method: &str,
    path: &str,
) -> (u16, String, String) {
    let resp = c
        .check(check_bearer(method, path, token))
        .await
        .expect("no RPC error under reload");
    let a = read(resp.into_inner());
    (
        a.status,
        a.reason().to_string(),
        format!(
            "{:?}/{:?}",
            a.header("x-claimgate-role"),
            a.header("x-claimgate-resource")
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_load_every_answer_is_version_a_or_b_and_the_last_flip_wins() {
    // Version A: bot is editor, POST /a needs editor, no /b.
    // Version B: bot is viewer, POST /a needs viewer, /b exists.
    // A half-applied edit (B's resources with A's routes) would deny POST /a: it must never show.
    let key = TestKey::generate(Kind::Rs256, "k1");
    let token = key.sign(&claims("bot-run", json!({"repository": "acme/api"})));
    let dir = ConfigDir::new();
    let (keys, sso) = (jwks(&[&key]), sso_yaml("[RS256]"));
    let routes_b = format!(
        "{}  - path: /b\n    resource: model:b\n    role: viewer\n",
        ROUTES.replace(
            "methods: [POST]\n    resource: model:a\n    role: editor",
            "methods: [POST]\n    resource: model:a\n    role: viewer"
        )
    );
    let resources_b = format!("{RESOURCES_VIEWER}  - fqn: model:b\n    collaborators:\n      - subject: external-identity:bot\n        role: viewer\n");
    configmap::version(
        dir.path(),
        "a",
        &version_files(&keys, &sso, RESOURCES_EDITOR, ROUTES),
    );
    configmap::version(
        dir.path(),
        "b",
        &version_files(&keys, &sso, &resources_b, &routes_b),
    );
    configmap::swap(dir.path(), "a");
    let fast = ReloadOptions {
        debounce: Duration::from_millis(10),
        poll: Duration::from_secs(30),
        ..ReloadOptions::default()
    };
    let server = TestServer::builder(dir.path()).reload(fast).start().await;
    let mut c = server.client().await;
    let requests = [("POST", "/a"), ("GET", "/a"), ("GET", "/b")];

    // What each version answers, observed in a steady state.
    let mut expect_a = Vec::new();
    for (m, p) in requests {
        expect_a.push(answer(&mut c, &token, m, p).await);
    }
    configmap::swap(dir.path(), "b");
    assert!(eventually(BOUND, || async { server.store.generation() == 2 }).await);
    let mut expect_b = Vec::new();
    for (m, p) in requests {
        expect_b.push(answer(&mut c, &token, m, p).await);
    }
    assert_ne!(expect_a, expect_b);
    assert_eq!(expect_a[0].0, 200);
    assert_eq!(expect_b[0].0, 200);

    let done = Arc::new(AtomicBool::new(false));
    let flipper = {
        let done = done.clone();
        let path = dir.path().to_path_buf();
        tokio::spawn(async move {
            let mut flips = 0usize;
            while !done.load(Ordering::Relaxed) && flips < 2000 {
                configmap::swap(&path, if flips % 2 == 0 { "a" } else { "b" });
                flips += 1;
                // The pace of the edits is the scenario: swaps land while checks run.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            flips
        })
    };
    let start_generation = server.store.generation();
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 5_000;
    let checked = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..CLIENTS {
        let mut c = server.client().await;
        let token = token.clone();
        let (ea, eb) = (expect_a.clone(), expect_b.clone());
        let checked = checked.clone();
        workers.push(tokio::spawn(async move {
            for i in 0..PER_CLIENT {
                let k = (i + w) % requests.len();
                let (m, p) = requests[k];
                let got = answer(&mut c, &token, m, p).await;
                assert!(
                    got == ea[k] || got == eb[k],
                    "{m} {p}: {got:?} is neither A {:?} nor B {:?}",
                    ea[k],
                    eb[k]
                );
                checked.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for w in workers {
        w.await.expect("no worker saw a mixed or failed answer");
    }
    done.store(true, Ordering::Relaxed);
    let flips = flipper.await.unwrap();
    assert_eq!(checked.load(Ordering::Relaxed), CLIENTS * PER_CLIENT);
    let swaps = server.store.generation() - start_generation;
    assert!(
        swaps >= 3,
        "the config really changed under load ({swaps} swaps in {flips} flips)"
    );

    // The last flip wins: version A, then every answer is A's.
    configmap::swap(dir.path(), "a");
    let settled = eventually(BOUND, || {
        let mut c = c.clone();
        let (token, want) = (token.clone(), expect_a.clone());
        async move {
            let mut all = Vec::new();
            for (m, p) in requests {
                all.push(answer(&mut c, &token, m, p).await);
            }
            all == want
        }
    })
    .await;
    assert!(settled, "the final version is served");
    for i in 0..300 {
        let k = i % requests.len();
        let (m, p) = requests[k];
        assert_eq!(answer(&mut c, &token, m, p).await, expect_a[k]);
    }
    server.stop().await;
}

#[tokio::test]
async fn sighup_reloads_what_no_watcher_sees() {
    // The key file in the directory is a hard link to one outside it, and the rotation is
    // written through the outside name: the file in the directory changes, but a watcher of
    // the directory is told nothing, so only SIGHUP (or the slow poll) picks it up.
    let old = TestKey::generate(Kind::Rs256, "k1");
    let new = TestKey::generate(Kind::Rs256, "k2");
    let root = ConfigDir::new();
    let keys = root.write("secret/jwks.json", &jwks(&[&old]));
    let cfg = root.path().join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::hard_link(&keys, cfg.join("jwks.json")).unwrap();
    std::fs::write(cfg.join("sso.yaml"), sso_yaml("[RS256]")).unwrap();
    std::fs::write(
        cfg.join("rest.yaml"),
        format!("{IDENTITIES}{RESOURCES_EDITOR}{ROUTES}"),
    )
    .unwrap();
    let serve = common::process::Claimgate::start_with(&cfg, &["--reload-poll", "1h"]).await;
    let mut c = serve.client().await;
    let token = new.sign(&claims("bot-run", json!({"repository": "acme/api"})));
    std::fs::write(&keys, jwks(&[&old, &new])).unwrap();
    // Only waiting can show that nothing comes: a watcher that saw the write would have
    // reloaded well within this (its debounce is 200 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        role_or_reason(&mut c, &token, "GET", "/a").await,
        (401, "unknown_key".to_string()),
        "no watcher sees the key file"
    );
    serve.signal("-HUP");
    assert!(
        becomes(&c, &token, "GET", "/a", (200, "editor")).await,
        "SIGHUP reloads"
    );
    let metrics = serve.get("/metrics").await.body;
    assert!(
        metrics.contains("claimgate_config_generation 2"),
        "{metrics}"
    );
}

/// One edit that must be refused, and a phrase the refusal's log line must hold.
type BadEdit<'a> = (&'a dyn Fn(&Path), &'a str);

/// Through the real binary: each bad edit in turn is refused (counted as a failure, logged
/// with its reason, the last good configuration keeps serving); then `fix` and a revocation
/// apply; then SIGTERM stops the process.
async fn bad_edits_are_refused_then_later_edits_apply(
    s: &Setup,
    bad_edits: &[BadEdit<'_>],
    fix: impl FnOnce(&Path),
) {
    let dir = s.dir.path();
    let mut serve = common::process::Claimgate::start_with(dir, &["--reload-poll", "1s"]).await;
    let c = serve.client().await;
    assert!(becomes(&c, &s.token, "POST", "/a", (200, "editor")).await);
    let failures = r#"claimgate_config_reloads_total{result="failure"}"#;
    for (n, (edit, reason)) in bad_edits.iter().enumerate() {
        edit(dir);
        let refused = eventually(BOUND, || async {
            serve.metric(failures).await.unwrap_or(0.0) > n as f64
        })
        .await;
        assert!(refused, "bad edit {n} is refused\n{}", serve.logs());
        let logged = eventually(BOUND, || async { serve.logs().contains(reason) }).await;
        assert!(logged, "the refusal says {reason:?}\n{}", serve.logs());
        let mut c2 = c.clone();
        assert_eq!(
            role_or_reason(&mut c2, &s.token, "POST", "/a").await,
            (200, "editor".to_string()),
            "the last good configuration keeps serving"
        );
    }
    fix(dir);
    std::fs::write(dir.join("resources.yaml"), RESOURCES_VIEWER).unwrap();
    assert!(
        becomes(&c, &s.token, "POST", "/a", (403, "insufficient_role")).await,
        "a later edit applies\n{}",
        serve.logs()
    );
    assert!(
        serve.terminate().await.is_some(),
        "SIGTERM stops the process\n{}",
        serve.logs()
    );
}

fn point_key_file_at(dir: &Path, jwks_file: &str) {
    std::fs::write(
        dir.join("sso.yaml"),
        sso_yaml("[RS256]").replace("jwks_file: jwks.json", &format!("jwks_file: {jwks_file}")),
    )
    .unwrap();
}

fn restore_key_file(dir: &Path) {
    point_key_file_at(dir, "jwks.json");
}

#[tokio::test]
async fn a_key_file_that_is_a_fifo_is_refused_and_later_edits_apply() {
    let s = setup();
    let fifo = |dir: &Path| {
        let status = std::process::Command::new("mkfifo")
            .arg(dir.join("keys.fifo"))
            .status()
            .unwrap();
        assert!(status.success());
        point_key_file_at(dir, "keys.fifo");
    };
    bad_edits_are_refused_then_later_edits_apply(
        &s,
        &[(&fifo, "keys.fifo: cannot read: not a regular file")],
        restore_key_file,
    )
    .await;
}

#[tokio::test]
async fn a_key_file_linked_to_dev_zero_is_refused_and_later_edits_apply() {
    let s = setup();
    let zero = |dir: &Path| {
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero.json")).unwrap();
        point_key_file_at(dir, "zero.json");
    };
    bad_edits_are_refused_then_later_edits_apply(
        &s,
        &[(
            &zero,
            "zero.json: resolves to /dev/zero, outside the configuration directory",
        )],
        restore_key_file,
    )
    .await;
}

#[tokio::test]
async fn a_key_file_outside_the_config_directory_is_refused_and_later_edits_apply() {
    let s = setup();
    // The same keys, outside: only where they are is wrong.
    let outside = ConfigDir::new();
    let keys = outside.write("jwks.json", &jwks(&[&s.key]));
    let name = outside.path().file_name().unwrap().to_str().unwrap();
    let parent = format!("../{name}/jwks.json");
    let up = |dir: &Path| point_key_file_at(dir, &parent);
    let absolute = |dir: &Path| point_key_file_at(dir, keys.to_str().unwrap());
    let own_output = |dir: &Path| point_key_file_at(dir, "/proc/self/fd/1");
    bad_edits_are_refused_then_later_edits_apply(
        &s,
        &[
            (&up, "outside the configuration directory"),
            (&absolute, "is an absolute path"),
            (&own_output, "/proc/self/fd/1: is an absolute path"),
        ],
        restore_key_file,
    )
    .await;
}

#[tokio::test]
async fn a_config_file_linked_to_a_moved_target_is_refused_and_later_edits_apply() {
    let s = setup();
    // The strict routes live behind a link, as a sync tool would lay them out.
    let dir = s.dir.path();
    std::fs::create_dir(dir.join("real")).unwrap();
    std::fs::rename(dir.join("routes.yaml"), dir.join("real/routes.yaml")).unwrap();
    std::os::unix::fs::symlink("real/routes.yaml", dir.join("routes.yaml")).unwrap();
    let move_away = |dir: &Path| {
        std::fs::rename(dir.join("real/routes.yaml"), dir.join("moved.txt")).unwrap();
    };
    bad_edits_are_refused_then_later_edits_apply(
        &s,
        &[(&move_away, "symbolic link whose target does not exist")],
        |dir| std::fs::rename(dir.join("moved.txt"), dir.join("real/routes.yaml")).unwrap(),
    )
    .await;
}

#[tokio::test]
async fn deeply_nested_yaml_is_refused_and_later_edits_apply() {
    let s = setup();
    // 80,000 levels in 160 KB: the parser would take minutes over it, on every poll.
    let deep = |dir: &Path| {
        let levels = 80_000;
        let text = format!("routes: {}{}\n", "[".repeat(levels), "]".repeat(levels));
        std::fs::write(dir.join("deep.yaml"), text).unwrap();
    };
    bad_edits_are_refused_then_later_edits_apply(
        &s,
        &[(&deep, "collections are nested deeper than 64 levels")],
        |dir| std::fs::remove_file(dir.join("deep.yaml")).unwrap(),
    )
    .await;
}
