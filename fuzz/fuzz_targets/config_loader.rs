//! The configuration loader, fed any bytes as YAML files of a configuration directory and
//! loaded the way `validate` loads it (`claimgate::tools::validate::validate`: the load `serve` does,
//! then the review).
//!
//! Never panics, and every diagnostic, error or warning, names a file of the directory and a
//! line and column inside it. The input is one file, `a.yaml`, or two when it holds the line
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
        // A position just past the last line is where an unexpected end is reported.
        let lines = text.split(|b| *b == b'\n').count();
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
