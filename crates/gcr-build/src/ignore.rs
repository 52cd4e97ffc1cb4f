//! `.gcrignore`, with `.dockerignore` syntax: one pattern per line, `#` comments, `!` to
//! re-include, `*`, `?`, `[...]` within a path segment and `**` across segments; leading
//! `/` and `./` are ignored. The last matching pattern decides. A pattern that matches a
//! directory excludes everything below it (unless a later `!` pattern re-includes it).

/// A parsed ignore file.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    negate: bool,
    segments: Vec<String>,
}

impl Ignore {
    /// Parses the text of a `.gcrignore`.
    pub fn parse(text: &str) -> Ignore {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let segments: Vec<String> = pat
                .split('/')
                .filter(|s| !s.is_empty() && *s != ".")
                .map(str::to_string)
                .collect();
            if segments.is_empty() {
                continue;
            }
            rules.push(Rule { negate, segments });
        }
        Ignore { rules }
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut out = false;
        for r in &self.rules {
            // A rule matches the path or any of its parent directories.
            let hit = (1..=parts.len()).any(|n| match_segments(&r.segments, &parts[..n]));
            if hit {
                out = !r.negate;
            }
        }
        out
    }

    /// Whether some `!` rule could re-include something below the excluded directory `dir`
    /// (then the walk must descend into it).
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        let _ = dir;
        self.rules.iter().any(|r| r.negate)
    }
}

fn match_segments(pat: &[String], path: &[&str]) -> bool {
    match pat.first() {
        None => path.is_empty(),
        Some(p) if p == "**" => {
            (0..=path.len()).any(|skip| match_segments(&pat[1..], &path[skip..]))
        }
        Some(p) => match path.first() {
            Some(s) => glob(p.as_bytes(), s.as_bytes()) && match_segments(&pat[1..], &path[1..]),
            None => false,
        },
    }
}

/// Matches one path segment against a glob with `*`, `?`, `[...]` (with `!`/`^` negation
/// and ranges) and `\` escapes.
fn glob(p: &[u8], s: &[u8]) -> bool {
    gcr_core::dockerfile::words::glob_match(p, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_semantics() {
        let ig =
            Ignore::parse("# comment\n*.log\n/build\n!build/keep.txt\n**/secret*\ndocs/*.md\n");
        assert!(ig.excluded("a.log"));
        assert!(
            !ig.excluded("dir/a.log"),
            "*.log is anchored at the root like Docker"
        );
        assert!(ig.excluded("build"));
        assert!(ig.excluded("build/x.o"));
        assert!(!ig.excluded("build/keep.txt"));
        assert!(ig.excluded("secret.key"));
        assert!(ig.excluded("a/b/secret-2"));
        assert!(ig.excluded("docs/x.md"));
        assert!(!ig.excluded("docs/sub/x.md"));
        assert!(!ig.excluded("src/main.rs"));
    }

    #[test]
    fn globs() {
        assert!(glob(b"a*c", b"abbbc"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(glob(b"[a-c]x", b"bx"));
        assert!(!glob(b"[!a-c]x", b"bx"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"abc", b"abd"));
    }
}
