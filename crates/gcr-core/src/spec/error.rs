//! The one error type of the spec parser: a position (file, 1-based line and column),
//! the dotted field path (`runtime.resources.memory`, `build.copy[0].src`) and a
//! sentence saying what is wrong and what is expected.

use std::fmt;

/// A spec that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Dotted field path; empty for document-level problems.
    pub path: String,
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(file: &str, mark: Mark, path: &str, message: impl Into<String>) -> SpecError {
        SpecError {
            file: file.to_string(),
            line: mark.line,
            column: mark.col,
            path: path.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// A position in the source, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mark {
    pub line: usize,
    pub col: usize,
}

impl Mark {
    pub const START: Mark = Mark { line: 1, col: 1 };
}

/// Joins a field path and a key: `join("runtime", "cmd") == "runtime.cmd"`.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
