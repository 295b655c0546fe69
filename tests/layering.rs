//! The layering written in `src/lib.rs` holds: no module of the library uses one that sits
//! above it. Each file under `src/` is read as text and every `crate::name` outside a comment
//! is checked against the layer table below, which must name every module `lib.rs` declares.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers of `src/lib.rs`'s table of contents, lowest first.
const LAYERS: &[&[&str]] = &[
    &["clock", "role", "decision", "decision_id", "text"],
    &["config", "keys", "metrics", "provider"],
    &["routing", "identity"],
    &["snapshot"],
    &["token", "token_cache"],
    &["pipeline"],
    &["store"],
    &["load"],
    &["explain", "validate", "audit", "mint", "suite", "diff"],
    &[
        "listener",
        "tls",
        "service",
        "http",
        "health",
        "reload",
        "decision_log",
    ],
    &["server"],
];

/// Names `lib.rs` re-exports at the crate root, and the module each comes from.
const ROOT_EXPORTS: &[(&str, &str)] = &[
    ("ConfigError", "config"),
    ("Diagnostic", "config"),
    ("Severity", "config"),
    ("Decision", "decision"),
    ("Reason", "decision"),
    ("Snapshot", "snapshot"),
    ("Store", "store"),
];

fn layer_of() -> BTreeMap<&'static str, usize> {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, mods)| mods.iter().map(move |m| (*m, i)))
        .collect()
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

/// The top-level module a file belongs to: `src/a.rs` and `src/a/b.rs` are both `a`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("file under src/");
    let first = rel.components().next().expect("a path component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// Every `crate::name` used on a line that is not a comment.
fn crate_references(text: &str) -> Vec<(usize, String)> {
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
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((n + 1, name));
            }
            rest = after;
        }
    }
    found
}

#[test]
fn the_layer_table_names_every_module_lib_rs_declares() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("src/lib.rs");
    let layers = layer_of();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(!declared.is_empty(), "lib.rs declares modules");
    for m in &declared {
        assert!(
            layers.contains_key(m),
            "module {m} is declared in lib.rs but has no layer in tests/layering.rs"
        );
    }
    for m in layers.keys() {
        assert!(
            declared.contains(m),
            "module {m} has a layer but lib.rs does not declare it"
        );
    }
}

#[test]
fn no_module_uses_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layer_of();
    let exports: BTreeMap<&str, &str> = ROOT_EXPORTS.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let module = module_of(&src, &file);
        let Some(&own) = layers.get(module.as_str()) else {
            continue; // lib.rs and main.rs sit above every module
        };
        let text = std::fs::read_to_string(&file).expect("source file");
        for (line, name) in crate_references(&text) {
            let target = exports.get(name.as_str()).copied().unwrap_or(&name);
            let Some(&theirs) = layers.get(target) else {
                violations.push(format!(
                    "{}:{line}: crate::{name} is neither a module nor a known root export",
                    file.display()
                ));
                continue;
            };
            if theirs > own {
                violations.push(format!(
                    "{}:{line}: {module} (layer {}) uses {target} (layer {})",
                    file.display(),
                    own + 1,
                    theirs + 1
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_a_use_of_a_higher_module() {
    let refs = crate_references(
        "use crate::store::Store; // crate::ignored\n// crate::comment\nlet x = crate::pipeline::decide;",
    );
    let names: Vec<&str> = refs.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["store", "pipeline"]);
}
