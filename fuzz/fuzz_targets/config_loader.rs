//! The configuration loader, fed any bytes as YAML files of a configuration directory and
//! loaded the way `validate` loads it (`claimgate::tools::validate::validate`: the load `serve` does,
//! then the review).
//!
//! Never panics, and every diagnostic, error or warning, names a file of the directory and a
//! line and column inside it (lines as YAML counts them). The input is one file, `a.yaml`, or two when it holds the line
//! `#8<` (the rest goes to `b.yaml`), so that findings across files are reached; the
//! directory also holds the example's `keys/dev-jwks.json`, so key files can be found.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use claimgate::tools::validate::{validate, Format};
use libfuzzer_sys::fuzz_target;

const SPLIT: &[u8] = b"\n#8<\n";

fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("keys")).expect("keys/");
        std::fs::copy(
            claimgate_fuzz::repo_root().join("config/keys/dev-jwks.json"),
            dir.path().join("keys/dev-jwks.json"),
        )
        .expect("the example's key file");
        dir
    })
    .path()
}

/// How many lines YAML sees in `text`: CR LF, CR and LF each end one (YAML 1.2, 5.4), and a
/// final line break starts one more, empty, where a fault at the end is reported.
fn yaml_lines(text: &[u8]) -> usize {
    let mut lines = 1;
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\r' && text.get(i + 1) == Some(&b'\n') {
            i += 1;
        }
        if matches!(text[i], b'\r' | b'\n') {
            lines += 1;
        }
        i += 1;
    }
    lines
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    let (a, b) = match data.windows(SPLIT.len()).position(|w| w == SPLIT) {
        Some(i) => (&data[..i], Some(&data[i + SPLIT.len()..])),
        None => (data, None),
    };
    std::fs::write(dir.join("a.yaml"), a).expect("write a.yaml");
    match b {
        Some(b) => std::fs::write(dir.join("b.yaml"), b).expect("write b.yaml"),
        None => {
            let _ = std::fs::remove_file(dir.join("b.yaml"));
        }
    }
    let files: Vec<(&str, &[u8])> = std::iter::once(("a.yaml", a))
        .chain(b.map(|b| ("b.yaml", b)))
        .collect();
    let validation = validate(dir, &[]);
    assert_eq!(validation.fatal, None, "the directory is readable");
    for d in &validation.diagnostics {
        let Some((_, text)) = files.iter().find(|(name, _)| *name == d.file) else {
            panic!("{d}: not a file of the directory");
        };
        let lines = yaml_lines(text);
        assert!(
            d.line >= 1 && d.line <= lines.max(1),
            "{d}: line outside the file ({lines} lines)"
        );
        assert!(d.col >= 1, "{d}: no column");
    }
    for format in [Format::Text, Format::Github, Format::Json] {
        let _ = validation.render(format);
    }
});
