//! Where each value of a YAML file is: its line and column, by path (`routes[2].role`).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Locations (1-based line and column) of every value in one YAML file, by path.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    by_path: HashMap<String, (usize, usize)>,
}

impl Marks {
    /// Scan `text` for the location of every value, or where it is broken (line, col, why).
    pub fn scan(text: &str) -> Result<Marks, (usize, usize, String)> {
        let mut recv = MarkCollector::default();
        let mut parser = Parser::new_from_str(text);
        let end = End::of(text);
        parser.load(&mut recv, false).map_err(|e| {
            let m = e.marker();
            let (line, col) = end.clamp(m.line(), m.col() + 1);
            (line, col, e.info().to_string())
        })?;
        let mut by_path = recv.marks;
        for at in by_path.values_mut() {
            *at = end.clamp(at.0, at.1);
        }
        Ok(Marks { by_path })
    }

    /// The location of `path`, or of its nearest recorded parent.
    pub fn locate(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(&loc) = self.by_path.get(p) {
                return loc;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

/// Where a YAML text ends: how many lines it has and the column after its last one's end.
/// yaml-rust2 puts a fault it meets, or an empty value it reads, at the end of a file that
/// has no final line break on the line after the last one; that place is the end of the last
/// line. Lines are YAML's: CR LF, CR and LF each end one, as both parsers count them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct End {
    lines: usize,
    last_col: usize,
}

impl End {
    /// Where `text` ends.
    pub(crate) fn of(text: &str) -> End {
        // A final line break starts one more (empty) line, where a fault at the end is.
        let (mut lines, mut last) = (1, 0);
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            if matches!(b[i], b'\r' | b'\n') {
                lines += 1;
                last = i + 1;
            }
            i += 1;
        }
        End {
            lines,
            last_col: text[last..].chars().count() + 1,
        }
    }

    /// A parser's 1-based `line` and `col`, kept inside the text.
    pub(crate) fn clamp(self, line: usize, col: usize) -> (usize, usize) {
        if line <= self.lines {
            (line.max(1), col.max(1))
        } else {
            (self.lines, self.last_col)
        }
    }
}

/// A parser's 1-based `line` and `col`, kept inside `text` (see [`End`]).
pub(crate) fn within(text: &str, line: usize, col: usize) -> (usize, usize) {
    End::of(text).clamp(line, col)
}

enum Frame {
    Map {
        path: String,
        expecting_key: bool,
        key: String,
        // Where the mapping started; used only if it has no key to point at.
        start: Marker,
    },
    Seq {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct MarkCollector {
    stack: Vec<Frame>,
    marks: HashMap<String, (usize, usize)>,
}

impl MarkCollector {
    fn child_path(&mut self) -> String {
        match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                p
            }
            Some(Frame::Map {
                path,
                expecting_key,
                key,
                ..
            }) => {
                *expecting_key = true;
                if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                }
            }
        }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        self.marks
            .entry(path.to_string())
            .or_insert((mark.line().max(1), mark.col() + 1));
    }
}

impl MarkedEventReceiver for MarkCollector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map {
                    expecting_key: expecting_key @ true,
                    key,
                    path,
                    ..
                }) = self.stack.last_mut()
                {
                    *key = value;
                    *expecting_key = false;
                    // A mapping is located at its first key: that is where a reader looks.
                    let path = path.clone();
                    self.record(&path, mark);
                    return;
                }
                let p = self.child_path();
                self.record(&p, mark);
            }
            Event::Alias(_) => {
                let p = self.child_path();
                self.record(&p, mark);
            }
            Event::MappingStart(..) => {
                let p = self.child_path();
                self.stack.push(Frame::Map {
                    path: p,
                    expecting_key: true,
                    key: String::new(),
                    start: mark,
                });
            }
            Event::SequenceStart(..) => {
                let p = self.child_path();
                self.record(&p, mark);
                self.stack.push(Frame::Seq { path: p, index: 0 });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { path, start, .. }) = self.stack.pop() {
                    self.record(&path, start);
                }
            }
            Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}
