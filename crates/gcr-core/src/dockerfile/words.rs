//! Docker's shell-word rules for the builder's own variable expansion (what BuildKit's
//! `shell.Lex` does for ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME,
//! WORKDIR and ARG defaults): single quotes are literal, double quotes allow `$` expansion,
//! the escape character (`\` or `` ` ``) makes the next character literal, and
//! `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?msg}`, `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`
//! expand from the stage's environment (an unset variable is empty). A result is capped at
//! [`MAX_EXPANSION`] bytes, so `ARG A1=${A0}${A0}`-style doubling fails cleanly.

use std::collections::BTreeMap;

/// The largest string one expansion may produce.
pub const MAX_EXPANSION: usize = 1 << 20;

/// Why a word could not be expanded (the caller adds the file and line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    #[error("unterminated {0}")]
    Unterminated(&'static str),
    #[error("bad substitution '{0}'")]
    BadSubstitution(String),
    #[error("{0}")]
    Required(String),
    #[error("expands to more than {MAX_EXPANSION} bytes; an ARG or ENV value grows without bound")]
    TooLong,
}

/// The variables visible to an expansion.
pub trait Vars {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Vars for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl Vars for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Expands one word (quotes removed, whitespace kept).
pub fn expand(s: &str, escape: char, vars: &dyn Vars) -> Result<String, WordError> {
    let mut lx = Lexer::new(s, escape, vars);
    let (out, _) = lx.process(None, false)?;
    Ok(out)
}

/// Expands and splits into words at unquoted whitespace (COPY sources, EXPOSE, VOLUME).
pub fn expand_words(s: &str, escape: char, vars: &dyn Vars) -> Result<Vec<String>, WordError> {
    let mut lx = Lexer::new(s, escape, vars);
    let (_, words) = lx.process(None, true)?;
    Ok(words)
}

/// Splits without expanding, keeping quotes and escapes (ENV/LABEL `k=v` pairs).
pub fn split_raw(s: &str, escape: char) -> Result<Vec<String>, WordError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == escape {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
            have = true;
        } else if c == '\'' || c == '"' {
            cur.push(c);
            let mut closed = false;
            while let Some(n) = chars.next() {
                cur.push(n);
                if n == escape && c == '"' {
                    if let Some(m) = chars.next() {
                        cur.push(m);
                    }
                    continue;
                }
                if n == c {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err(WordError::Unterminated(if c == '"' {
                    "double quote"
                } else {
                    "single quote"
                }));
            }
            have = true;
        } else if c.is_whitespace() {
            if have {
                words.push(std::mem::take(&mut cur));
                have = false;
            }
        } else {
            cur.push(c);
            have = true;
        }
    }
    if have {
        words.push(cur);
    }
    Ok(words)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a dyn Vars,
}

impl<'a> Lexer<'a> {
    fn new(s: &str, escape: char, vars: &'a dyn Vars) -> Lexer<'a> {
        Lexer {
            chars: s.chars().collect(),
            pos: 0,
            escape,
            vars,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes until `stop` (not consumed... it is consumed) or the end. With `split`,
    /// also returns the words separated by unquoted whitespace.
    fn process(
        &mut self,
        stop: Option<char>,
        split: bool,
    ) -> Result<(String, Vec<String>), WordError> {
        let mut out = String::new();
        let mut words = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        let mut stopped = stop.is_none();
        while let Some(c) = self.next() {
            if Some(c) == stop {
                stopped = true;
                break;
            }
            let piece: String;
            if c == self.escape {
                match self.next() {
                    Some(n) => piece = n.to_string(),
                    None => piece = c.to_string(),
                }
            } else if c == '\'' {
                piece = self.single_quoted()?;
                in_word = true;
            } else if c == '"' {
                piece = self.double_quoted()?;
                in_word = true;
            } else if c == '$' {
                piece = self.dollar()?;
                if split && !piece.is_empty() {
                    // An unquoted expansion is split too (shell field splitting).
                    let mut first = true;
                    for part in piece.split(char::is_whitespace) {
                        if !first && in_word {
                            words.push(std::mem::take(&mut word));
                            in_word = false;
                        }
                        first = false;
                        if !part.is_empty() {
                            word.push_str(part);
                            in_word = true;
                        }
                    }
                    out.push_str(&piece);
                    check(&out)?;
                    continue;
                }
            } else if split && c.is_whitespace() {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                out.push(c);
                continue;
            } else {
                piece = c.to_string();
            }
            if !piece.is_empty() {
                in_word = true;
            }
            out.push_str(&piece);
            word.push_str(&piece);
            check(&out)?;
        }
        if !stopped {
            return Err(WordError::Unterminated("${...}"));
        }
        if in_word {
            words.push(word);
        }
        Ok((out, words))
    }

    fn single_quoted(&mut self) -> Result<String, WordError> {
        let mut s = String::new();
        loop {
            match self.next() {
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
                None => return Err(WordError::Unterminated("single quote")),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, WordError> {
        let mut s = String::new();
        loop {
            match self.next() {
                Some('"') => return Ok(s),
                Some('$') => {
                    s.push_str(&self.dollar()?);
                    check(&s)?;
                }
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        s.push(n);
                    }
                    _ => s.push(c),
                },
                Some(c) => s.push(c),
                None => return Err(WordError::Unterminated("double quote")),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    /// After a `$`.
    fn dollar(&mut self) -> Result<String, WordError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let n = self.name();
                Ok(self.vars.get(&n).unwrap_or("").to_string())
            }
            _ => Ok("$".into()),
        }
    }

    /// After `${`.
    fn braced(&mut self) -> Result<String, WordError> {
        let name = self.name();
        if name.is_empty() {
            let rest: String = self.chars[self.pos..].iter().take(20).collect();
            return Err(WordError::BadSubstitution(format!("${{{rest}")));
        }
        let val = self.vars.get(&name).map(str::to_string);
        let Some(c) = self.next() else {
            return Err(WordError::Unterminated("${...}"));
        };
        match c {
            '}' => Ok(val.unwrap_or_default()),
            ':' => {
                let Some(op) = self.next() else {
                    return Err(WordError::Unterminated("${...}"));
                };
                let (word, _) = self.process(Some('}'), false)?;
                let set = val.as_deref().is_some_and(|v| !v.is_empty());
                match op {
                    '-' => Ok(if set { val.unwrap_or_default() } else { word }),
                    '+' => Ok(if set { word } else { String::new() }),
                    '?' if set => Ok(val.unwrap_or_default()),
                    '?' => Err(WordError::Required(required(&name, &word))),
                    other => Err(WordError::BadSubstitution(format!("${{{name}:{other}"))),
                }
            }
            '-' | '+' | '?' => {
                let (word, _) = self.process(Some('}'), false)?;
                match (c, val) {
                    ('-', Some(v)) => Ok(v),
                    ('-', None) => Ok(word),
                    ('+', Some(_)) => Ok(word),
                    ('+', None) => Ok(String::new()),
                    (_, Some(v)) => Ok(v),
                    (_, None) => Err(WordError::Required(required(&name, &word))),
                }
            }
            '#' | '%' => {
                let longest = self.peek() == Some(c);
                if longest {
                    self.pos += 1;
                }
                let (pat, _) = self.process(Some('}'), false)?;
                let v = val.unwrap_or_default();
                Ok(trim_pattern(&v, &pat, c == '#', longest))
            }
            other => Err(WordError::BadSubstitution(format!("${{{name}{other}"))),
        }
    }
}

fn required(name: &str, msg: &str) -> String {
    if msg.is_empty() {
        format!("{name}: is not allowed to be unset")
    } else {
        format!("{name}: {msg}")
    }
}

fn check(s: &str) -> Result<(), WordError> {
    if s.len() > MAX_EXPANSION {
        Err(WordError::TooLong)
    } else {
        Ok(())
    }
}

/// `${v#pat}` (prefix) and `${v%pat}` (suffix), shortest or longest glob match.
fn trim_pattern(v: &str, pat: &str, prefix: bool, longest: bool) -> String {
    let idx: Vec<usize> = v
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(v.len()))
        .collect();
    let cands: Box<dyn Iterator<Item = &usize>> = match (prefix, longest) {
        (true, false) | (false, true) => Box::new(idx.iter()),
        (true, true) | (false, false) => Box::new(idx.iter().rev()),
    };
    for &i in cands {
        let (part, rest) = if prefix {
            (&v[..i], &v[i..])
        } else {
            (&v[i..], &v[..i])
        };
        if glob_match(pat.as_bytes(), part.as_bytes()) {
            return rest.to_string();
        }
    }
    v.to_string()
}

/// Shell glob (`*`, `?`, `[...]`) over bytes; `*` crosses `/`.
pub fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some(pi);
                    mark = si;
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((ok, end)) = class(&p[pi..], s[si]) {
                        if ok {
                            pi += end;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == b'[' {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                    pi += 2;
                    si += 1;
                    continue;
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some(sp) => {
                pi = sp + 1;
                mark += 1;
                si = mark;
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// A `[...]` class at the start of `p`: whether `c` matches, and the class's length.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let neg = matches!(p.get(1), Some(b'!') | Some(b'^'));
    if neg {
        i += 1;
    }
    let mut ok = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((ok != neg, i + 1));
        }
        first = false;
        let lo = p[i];
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            if lo <= c && c <= p[i + 2] {
                ok = true;
            }
            i += 3;
        } else {
            if lo == c {
                ok = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        vec![
            ("A".into(), "apple".into()),
            ("E".into(), String::new()),
            ("P".into(), "dir/sub/file.tar.gz".into()),
        ]
    }

    fn ex(s: &str) -> String {
        expand(s, '\\', &vars()).unwrap()
    }

    #[test]
    fn expansions() {
        assert_eq!(ex("$A-${A}"), "apple-apple");
        assert_eq!(ex("${X:-def}"), "def");
        assert_eq!(ex("${E:-def}"), "def");
        assert_eq!(ex("${E-def}"), "");
        assert_eq!(ex("${A:+alt}"), "alt");
        assert_eq!(ex("${X:+alt}"), "");
        assert_eq!(ex("${E+alt}"), "alt");
        assert_eq!(ex("${X:-${A}s}"), "apples");
        assert_eq!(ex("${P#*/}"), "sub/file.tar.gz");
        assert_eq!(ex("${P##*/}"), "file.tar.gz");
        assert_eq!(ex("${P%.*}"), "dir/sub/file.tar");
        assert_eq!(ex("${P%%.*}"), "dir/sub/file");
        assert_eq!(ex("'$A' \"$A\" \\$A"), "$A apple $A");
        assert_eq!(ex("a$"), "a$");
        assert_eq!(ex("\"a\\\"b\""), "a\"b");
        assert!(matches!(
            expand("${X:?need X}", '\\', &vars()),
            Err(WordError::Required(_))
        ));
        assert!(expand("${A", '\\', &vars()).is_err());
        assert!(expand("'open", '\\', &vars()).is_err());
        assert!(expand("${}", '\\', &vars()).is_err());
    }

    #[test]
    fn words() {
        let w = expand_words("a 'b c' \"$A d\" $P", '\\', &vars()).unwrap();
        assert_eq!(w, vec!["a", "b c", "apple d", "dir/sub/file.tar.gz"]);
        assert_eq!(
            expand_words("  ", '\\', &vars()).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            split_raw("a=\"b c\" d='e f' g\\ h", '\\').unwrap(),
            vec!["a=\"b c\"", "d='e f'", "g\\ h"]
        );
        assert_eq!(ex("x`$A",), "x`apple");
        assert_eq!(expand("x`$A", '`', &vars()).unwrap(), "x$A");
    }

    #[test]
    fn growth_is_capped() {
        let mut v: Vec<(String, String)> = vec![("A0".into(), "x".repeat(1024))];
        let mut err = None;
        for i in 1..40 {
            match expand(&format!("${{A{}}}${{A{}}}", i - 1, i - 1), '\\', &v) {
                Ok(s) => v.push((format!("A{i}"), s)),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert_eq!(err, Some(WordError::TooLong));
    }

    #[test]
    fn globs() {
        assert!(glob_match(b"*.txt", b"a.txt"));
        assert!(!glob_match(b"*.txt", b"a.txd"));
        assert!(glob_match(b"f[0-9]?", b"f1x"));
        assert!(glob_match(b"[!a]", b"b"));
        assert!(!glob_match(b"[!a]", b"a"));
    }
}
