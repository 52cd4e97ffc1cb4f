//! From Dockerfile text to logical lines: parser directives (`# syntax=`, `# escape=`) at
//! the top, comments and blank lines dropped, lines joined across the escape character at
//! the end of a line, and the heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) of RUN, COPY and ADD
//! collected from the lines that follow their instruction.

use super::{DockerfileError, Heredoc, Loc};

/// The largest Dockerfile accepted.
pub const MAX_DOCKERFILE_BYTES: usize = 8 << 20;
/// The most instructions a Dockerfile may have.
pub const MAX_INSTRUCTIONS: usize = 20_000;

/// One instruction's text, its location and its heredocs.
#[derive(Debug, Clone)]
pub struct Logical {
    pub loc: Loc,
    pub text: String,
    pub heredocs: Vec<Heredoc>,
}

/// The directives and logical lines of a Dockerfile.
#[derive(Debug, Clone)]
pub struct Lexed {
    pub escape: char,
    pub syntax: Option<String>,
    pub lines: Vec<Logical>,
}

fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?.trim();
    let (k, v) = rest.split_once('=')?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((k.to_ascii_lowercase(), v.trim().to_string()))
}

/// Splits `text` into logical lines.
pub fn lex(file: &str, text: &str) -> Result<Lexed, DockerfileError> {
    let err = |line: usize, col: usize, msg: String| DockerfileError {
        file: file.to_string(),
        line,
        col,
        msg,
    };
    if text.len() > MAX_DOCKERFILE_BYTES {
        return Err(err(
            1,
            1,
            format!("the Dockerfile is larger than {MAX_DOCKERFILE_BYTES} bytes"),
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let phys: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut escape = '\\';
    let mut syntax = None;
    let mut i = 0;
    let mut seen = std::collections::BTreeSet::new();
    while i < phys.len() {
        let Some((k, v)) = directive(phys[i]) else {
            break;
        };
        if !seen.insert(k.clone()) {
            return Err(err(
                i + 1,
                1,
                format!("the {k} directive is given twice; keep one"),
            ));
        }
        match k.as_str() {
            "escape" => {
                escape = match v.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(err(
                            i + 1,
                            1,
                            format!("invalid escape directive '{v}'; use \\ or `"),
                        ))
                    }
                }
            }
            "syntax" => syntax = Some(v),
            _ => {} // `check` and unknown directives are comments to this parser
        }
        i += 1;
    }
    let mut lines = Vec::new();
    while i < phys.len() {
        let line = phys[i];
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let loc = Loc {
            line: i + 1,
            col: line.len() - trimmed.len() + 1,
        };
        let mut textbuf = String::new();
        let mut cur = trimmed;
        loop {
            let t = cur.trim_end();
            match t.strip_suffix(escape) {
                Some(body) => {
                    textbuf.push_str(body);
                    i += 1;
                    // Comment and blank lines inside a continuation are skipped.
                    while i < phys.len() {
                        let n = phys[i].trim_start();
                        if n.starts_with('#') || n.trim().is_empty() {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    if i >= phys.len() {
                        break;
                    }
                    cur = phys[i];
                }
                None => {
                    textbuf.push_str(cur);
                    i += 1;
                    break;
                }
            }
        }
        let mut heredocs = Vec::new();
        let word = textbuf
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if matches!(word.as_str(), "RUN" | "COPY" | "ADD") {
            for (name, quoted, chomp) in heredoc_markers(&textbuf, escape) {
                let start = i;
                let mut content = String::new();
                let mut done = false;
                while i < phys.len() {
                    let l = phys[i];
                    i += 1;
                    let l2 = if chomp { l.trim_start_matches('\t') } else { l };
                    if l2 == name {
                        done = true;
                        break;
                    }
                    content.push_str(l2);
                    content.push('\n');
                    if content.len() > MAX_DOCKERFILE_BYTES {
                        break;
                    }
                }
                if !done {
                    return Err(err(
                        start,
                        loc.col,
                        format!("heredoc <<{name} is never closed; end it with a line holding only {name}"),
                    ));
                }
                heredocs.push(Heredoc {
                    name,
                    expand: !quoted,
                    content,
                });
            }
        }
        lines.push(Logical {
            loc,
            text: textbuf,
            heredocs,
        });
        if lines.len() > MAX_INSTRUCTIONS {
            return Err(err(
                loc.line,
                loc.col,
                format!("the Dockerfile has more than {MAX_INSTRUCTIONS} instructions"),
            ));
        }
    }
    Ok(Lexed {
        escape,
        syntax,
        lines,
    })
}

/// The heredoc markers of an instruction line, in order: `(name, quoted, chomp)`. A marker
/// is `<<` at the start of a word outside quotes, then an optional `-`, then a name,
/// optionally quoted.
pub fn heredoc_markers(line: &str, escape: char) -> Vec<(String, bool, bool)> {
    let c: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < c.len() {
        let ch = c[i];
        if let Some(q) = quote {
            if ch == escape && q == '"' {
                i += 2;
                continue;
            }
            if ch == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if ch == escape {
            i += 2;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            i += 1;
            continue;
        }
        let word_start = i == 0 || c[i - 1].is_whitespace();
        if ch == '<' && word_start && c.get(i + 1) == Some(&'<') && c.get(i + 2) != Some(&'<') {
            let mut j = i + 2;
            let chomp = c.get(j) == Some(&'-');
            if chomp {
                j += 1;
            }
            let q = match c.get(j) {
                Some(&q) if q == '"' || q == '\'' => {
                    j += 1;
                    Some(q)
                }
                _ => None,
            };
            let start = j;
            while j < c.len() && !c[j].is_whitespace() && Some(c[j]) != q && c[j] != '<' {
                j += 1;
            }
            let name: String = c[start..j].iter().collect();
            let closed = match q {
                Some(q) => c.get(j) == Some(&q),
                None => true,
            };
            if !name.is_empty() && closed {
                if q.is_some() {
                    j += 1;
                }
                out.push((name, q.is_some(), chomp));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}
