//! The Dockerfile parser: text to stages of typed instructions, with Docker's (BuildKit's)
//! syntax — parser directives, line continuations with the `# escape=` character, heredocs,
//! flags, JSON (exec) and shell forms, `ENV`/`LABEL` pairs, ONBUILD triggers. Variables are
//! not expanded here: that needs the build's arguments and each stage's environment, so the
//! builder does it with [`words`]. Every error names the file, line and column.

mod lines;
mod parse;
pub mod words;

use std::fmt;

pub use lines::{MAX_DOCKERFILE_BYTES, MAX_INSTRUCTIONS};
pub use parse::{parse, parse_instruction};

/// A position in the Dockerfile (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loc {
    pub line: usize,
    pub col: usize,
}

/// A parse error: where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {msg}")]
pub struct DockerfileError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// The `# syntax=` directive, if any (recorded; this parser is the frontend).
    pub syntax: Option<String>,
    /// ARGs before the first FROM (usable in FROM lines and redeclared in stages).
    pub meta_args: Vec<Located<Vec<ArgDecl>>>,
    pub stages: Vec<Stage>,
}

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub loc: Loc,
    pub value: T,
}

/// `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// Unexpanded.
    pub default: Option<String>,
}

/// One stage: `FROM base [AS name]` and what follows.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub loc: Loc,
    /// Unexpanded image reference, stage name or `scratch`.
    pub base: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// Lowercased `AS` name.
    pub name: Option<String>,
    pub instructions: Vec<Instruction>,
}

/// An instruction with its location and original text (for the history and errors).
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub loc: Loc,
    /// The instruction as written (continuations joined, heredoc bodies not included).
    pub text: String,
    pub kind: Kind,
}

/// A command in exec (JSON) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdLine {
    Exec(Vec<String>),
    Shell(String),
}

/// A heredoc body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// The word was unquoted: the builder expands variables in COPY/ADD bodies.
    pub expand: bool,
    /// The lines, each ending with `\n` (leading tabs removed for `<<-`).
    pub content: String,
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyInstr {
    pub add: bool,
    /// Sources as written (unexpanded); heredoc sources are `<<NAME` and in `heredocs`.
    pub srcs: Vec<String>,
    pub dest: String,
    /// The sources were a JSON array (each is one word; no splitting after expansion).
    pub json: bool,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    pub excludes: Vec<String>,
    pub parents: bool,
    pub heredocs: Vec<Heredoc>,
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInstr {
    pub cmd: CmdLine,
    /// `--mount` values as written.
    pub mounts: Vec<String>,
    pub network: Option<String>,
    pub security: Option<String>,
    pub heredocs: Vec<Heredoc>,
}

/// HEALTHCHECK options (durations as written) and command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthInstr {
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<String>,
    /// `None` for `HEALTHCHECK NONE`.
    pub cmd: Option<CmdLine>,
}

/// What an instruction does. Values are unexpanded.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Run(RunInstr),
    Copy(CopyInstr),
    /// `(key, value)` pairs; keys and values still carry their quotes.
    Env(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    Workdir(String),
    User(String),
    /// The words as written.
    Expose(String),
    /// Paths: JSON list or words.
    Volume(Vec<String>, bool),
    Label(Vec<(String, String)>),
    Entrypoint(CmdLine),
    Cmd(CmdLine),
    Healthcheck(HealthInstr),
    StopSignal(String),
    Shell(Vec<String>),
    /// The trigger's text (stored in the image's `OnBuild`) and its parsed instruction.
    OnBuild(String, Box<Kind>),
    Maintainer(String),
}

impl fmt::Display for CmdLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdLine::Shell(s) => f.write_str(s),
            CmdLine::Exec(v) => f.write_str(&serde_json::to_string(v).unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests;
