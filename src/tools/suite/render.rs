//! The output of a test run: one line per case and a closing count, or one JSON document.

use std::fmt::Write as _;

use super::Results;

/// How to print the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per test, for a terminal or a CI log.
    Text,
    /// One JSON document.
    Json,
}

impl Results {
    /// The results in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
                s.push('\n');
                s
            }
            Format::Text => self.text(),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for t in &self.tests {
            let at = format!("{}:{}:{}", t.file, t.line, t.col);
            if t.passed {
                let _ = writeln!(out, "ok    {at} {}", t.name);
                continue;
            }
            // One line per test, the hint included, so a CI log can be read by grep.
            let _ = write!(out, "FAIL  {at} {}: {}", t.name, t.differences.join("; "));
            match &t.hint {
                Some(hint) => {
                    let _ = writeln!(out, " | explain: {hint}");
                }
                None => out.push('\n'),
            }
        }
        let _ = writeln!(out, "{} passed, {} failed", self.passed, self.failed);
        out
    }
}
