//! The layering written in `src/lib.rs` and each layer's table of contents holds: the core
//! (`src/core/`) names neither the server (`src/server/`) nor the tools (`src/tools/`), the
//! server names no tool, and inside a layer no module uses one that sits above it. Each file
//! under `src/` is read as text and every `crate::…` path outside a comment is checked
//! against the table below, which must name every module the layers declare.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The three layers, lowest first, each with its modules in groups, lowest first.
const LAYERS: &[(&str, &[&[&str]])] = &[
    (
        "core",
        &[
            &[
                "clock",
                "role",
                "decision",
                "decision_id",
                "response",
                "text",
                "counters",
            ],
            &["config", "keys"],
            &["routing", "identity"],
            &["snapshot"],
            &["token", "token_cache"],
            &["pipeline"],
            &["store"],
            &["load"],
            &["bundle"],
        ],
    ),
    (
        "server",
        &[
            &["metrics", "provider"],
            &[
                "listener",
                "tls",
                "service",
                "http",
                "health",
                "reload",
                "decision_log",
            ],
            &["wiring"],
        ],
    ),
    (
        "tools",
        &[&[
            "explain", "validate", "audit", "mint", "suite", "diff", "bundle",
        ]],
    ),
];

/// Names `lib.rs` re-exports at the crate root: for the binary and the tests only, so a
/// module that uses one draws an arrow up to the crate root.
const ROOT_EXPORTS: &[&str] = &[
    "ConfigError",
    "Diagnostic",
    "Severity",
    "Decision",
    "Reason",
    "Snapshot",
    "Store",
];

/// A module's place: its layer's index and its group's rank across all layers.
#[derive(Debug, Clone, Copy)]
struct Place {
    layer: usize,
    rank: usize,
}

/// Every module as `layer::module`, with its place.
fn places() -> BTreeMap<String, Place> {
    let mut out = BTreeMap::new();
    let mut rank = 0;
    for (layer, (name, groups)) in LAYERS.iter().enumerate() {
        for group in *groups {
            for m in *group {
                out.insert(format!("{name}::{m}"), Place { layer, rank });
            }
            rank += 1;
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file belongs to, as `layer::module`: `src/core/a.rs` and `src/core/a/b.rs`
/// are both `core::a`. `None` for the crate root, the layers' tables of contents and the
/// binary, which sit above every module.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).expect("file under src/");
    let parts: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .collect();
    match parts.as_slice() {
        [layer, module, ..] if LAYERS.iter().any(|(l, _)| l == layer) => {
            Some(format!("{layer}::{module}"))
        }
        _ => None,
    }
}

/// Every `crate::a` or `crate::a::b` used on a line that is not a comment, as the path's
/// first two segments.
fn crate_references(text: &str) -> Vec<(usize, String)> {
    let segment = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let first = segment(after);
            if !first.is_empty() {
                let second = after[first.len()..]
                    .strip_prefix("::")
                    .map(segment)
                    .unwrap_or_default();
                found.push((n + 1, format!("{first}::{second}")));
            }
            rest = after;
        }
    }
    found
}

/// The `pub mod` names a file declares.
fn declared_modules(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect()
}

#[test]
fn the_layer_table_names_every_module_the_layers_declare() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers: Vec<String> = LAYERS.iter().map(|(l, _)| (*l).to_owned()).collect();
    assert_eq!(
        declared_modules(&src.join("lib.rs")),
        layers,
        "lib.rs declares exactly the three layers, lowest first"
    );
    let places = places();
    let mut declared = Vec::new();
    for layer in &layers {
        let mods = declared_modules(&src.join(format!("{layer}.rs")));
        assert!(!mods.is_empty(), "src/{layer}.rs declares modules");
        declared.extend(mods.into_iter().map(|m| format!("{layer}::{m}")));
    }
    for m in &declared {
        assert!(
            places.contains_key(m),
            "module {m} is declared but has no place in tests/layering.rs"
        );
    }
    for m in places.keys() {
        assert!(
            declared.contains(m),
            "module {m} has a place but is not declared"
        );
    }
}

#[test]
fn no_module_uses_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let places = places();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let own = places
            .get(&module)
            .unwrap_or_else(|| panic!("{}: module {module} has no place", file.display()));
        let text = std::fs::read_to_string(&file).expect("source file");
        for (line, path) in crate_references(&text) {
            let at = format!("{}:{line}", file.display());
            let (first, _) = path.split_once("::").unwrap_or((&path, ""));
            if ROOT_EXPORTS.contains(&first) {
                violations.push(format!(
                    "{at}: crate::{first} is a root re-export; import it from its module"
                ));
                continue;
            }
            let Some(theirs) = places.get(&path) else {
                violations.push(format!("{at}: crate::{path} is not a module of a layer"));
                continue;
            };
            if theirs.layer > own.layer {
                violations.push(format!(
                    "{at}: {module} (layer {}) uses {path} (layer {})",
                    LAYERS[own.layer].0, LAYERS[theirs.layer].0
                ));
            } else if theirs.rank > own.rank {
                violations.push(format!("{at}: {module} uses {path}, which sits above it"));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_a_use_of_a_higher_module() {
    let refs = crate_references(
        "use crate::core::store::Store; // crate::ignored\n// crate::comment\nlet x = crate::server::metrics::Metrics::new();\nuse crate::Snapshot;",
    );
    let paths: Vec<&str> = refs.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(paths, ["core::store", "server::metrics", "Snapshot::"]);
}
