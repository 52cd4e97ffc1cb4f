//! Logical lines to instructions: the instruction word, its flags (`--name=value` words
//! before the arguments; unknown or repeated flags are errors), exec (JSON) or shell
//! form, and each instruction's argument shape.

use super::lines::{self, Logical};
use super::words::split_raw;
use super::{
    ArgDecl, CmdLine, CopyInstr, Dockerfile, DockerfileError, HealthInstr, Heredoc, Instruction,
    Kind, Loc, Located, RunInstr, Stage,
};

/// Parses a Dockerfile; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile, DockerfileError> {
    let lexed = lines::lex(file, text)?;
    let mut df = Dockerfile {
        escape: lexed.escape,
        syntax: lexed.syntax,
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    let err = |loc: Loc, msg: String| DockerfileError {
        file: file.to_string(),
        line: loc.line,
        col: loc.col,
        msg,
    };
    for Logical {
        loc,
        text,
        heredocs,
    } in lexed.lines
    {
        let (word, rest) = split_word(&text);
        let upper = word.to_ascii_uppercase();
        if upper == "FROM" {
            let st = parse_from(rest).map_err(|m| err(loc, m))?;
            if let Some(n) = &st.name {
                if df.stages.iter().any(|s| s.name.as_deref() == Some(n)) {
                    return Err(err(
                        loc,
                        format!("duplicate stage name '{n}'; give each stage its own name"),
                    ));
                }
            }
            df.stages.push(Stage { loc, ..st });
            continue;
        }
        let kind = parse_instruction(&upper, rest, df.escape, heredocs).map_err(|m| err(loc, m))?;
        match df.stages.last_mut() {
            Some(stage) => stage.instructions.push(Instruction {
                loc,
                text: text.trim().to_string(),
                kind,
            }),
            None => match kind {
                Kind::Arg(a) => df.meta_args.push(Located { loc, value: a }),
                _ => {
                    return Err(err(
                        loc,
                        format!("{upper} before the first FROM; only ARG may come before FROM"),
                    ))
                }
            },
        }
    }
    if df.stages.is_empty() {
        return Err(err(
            Loc { line: 1, col: 1 },
            "the Dockerfile has no FROM instruction; start a stage with FROM IMAGE (or FROM scratch)"
                .into(),
        ));
    }
    Ok(df)
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

fn parse_from(rest: &str) -> Result<Stage, String> {
    let (flags, rest) = flags(rest, &[("platform", false)])?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (base, name) = match words.as_slice() {
        [b] => (b.to_string(), None),
        [b, as_, n] if as_.eq_ignore_ascii_case("as") => {
            let n = n.to_ascii_lowercase();
            if !valid_stage_name(&n) {
                return Err(format!(
                    "invalid stage name '{n}'; use letters, digits, '-', '_' and '.', starting with a letter"
                ));
            }
            (b.to_string(), Some(n))
        }
        [] => return Err("FROM needs an image; write FROM IMAGE [AS NAME]".into()),
        _ => return Err("FROM takes IMAGE [AS NAME]; remove the extra words".into()),
    };
    Ok(Stage {
        loc: Loc::default(),
        base,
        platform: flags.one("platform"),
        name,
        instructions: Vec::new(),
    })
}

fn valid_stage_name(n: &str) -> bool {
    n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Parses one instruction other than FROM (`upper` is its uppercased word). Also used for
/// ONBUILD triggers.
pub fn parse_instruction(
    upper: &str,
    rest: &str,
    escape: char,
    heredocs: Vec<Heredoc>,
) -> Result<Kind, String> {
    let need = |what: &str| -> Result<(), String> {
        if rest.trim().is_empty() {
            Err(format!("{upper} needs {what}"))
        } else {
            Ok(())
        }
    };
    let no_flags = |rest: &str| -> Result<(), String> {
        if let Some(w) = rest.split_whitespace().next() {
            if w.starts_with("--") && w.len() > 2 {
                let name = w.split('=').next().unwrap_or(w);
                return Err(format!("unknown flag: {name} ({upper} takes no flags)"));
            }
        }
        Ok(())
    };
    Ok(match upper {
        "RUN" => {
            let (f, rest) = flags(
                rest,
                &[("mount", true), ("network", false), ("security", false)],
            )?;
            if rest.trim().is_empty() {
                return Err("RUN needs a command".into());
            }
            Kind::Run(RunInstr {
                cmd: cmdline(rest),
                mounts: f.all("mount"),
                network: f.one("network"),
                security: f.one("security"),
                heredocs,
            })
        }
        "COPY" | "ADD" => {
            let add = upper == "ADD";
            let allowed: &[(&str, bool)] = if add {
                &[
                    ("chown", false),
                    ("chmod", false),
                    ("link", false),
                    ("checksum", false),
                    ("keep-git-dir", false),
                    ("exclude", true),
                ]
            } else {
                &[
                    ("from", false),
                    ("chown", false),
                    ("chmod", false),
                    ("link", false),
                    ("parents", false),
                    ("exclude", true),
                ]
            };
            let (f, rest) = flags(rest, allowed)?;
            let (mut srcs, json) = match json_list(rest) {
                Some(v) => (v, true),
                None => (
                    split_raw(rest, escape).map_err(|e| format!("{upper}: {e}"))?,
                    false,
                ),
            };
            if srcs.len() < 2 {
                return Err(format!(
                    "{upper} needs at least one source and a destination: {upper} SRC... DEST"
                ));
            }
            let dest = srcs.pop().unwrap_or_default();
            Kind::Copy(CopyInstr {
                add,
                srcs,
                dest,
                json,
                from: f.one("from"),
                chown: f.one("chown"),
                chmod: f.one("chmod"),
                link: f.bool("link")?,
                checksum: f.one("checksum"),
                keep_git_dir: f.bool("keep-git-dir")?,
                excludes: f.all("exclude"),
                parents: f.bool("parents")?,
                heredocs,
            })
        }
        "ENV" | "LABEL" => {
            no_flags(rest)?;
            need("at least one KEY=VALUE")?;
            let pairs = name_values(upper, rest, escape)?;
            if upper == "ENV" {
                Kind::Env(pairs)
            } else {
                Kind::Label(pairs)
            }
        }
        "ARG" => {
            no_flags(rest)?;
            need("a name: ARG NAME[=DEFAULT]")?;
            let mut out = Vec::new();
            for w in split_raw(rest, escape).map_err(|e| format!("ARG: {e}"))? {
                let (name, default) = match w.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (w.clone(), None),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "invalid ARG name '{name}'; use letters, digits and '_'"
                    ));
                }
                out.push(ArgDecl { name, default });
            }
            Kind::Arg(out)
        }
        "WORKDIR" => {
            no_flags(rest)?;
            need("a path")?;
            Kind::Workdir(rest.trim().to_string())
        }
        "USER" => {
            no_flags(rest)?;
            need("a user: USER NAME|UID[:GROUP|GID]")?;
            Kind::User(rest.trim().to_string())
        }
        "EXPOSE" => {
            no_flags(rest)?;
            need("a port: EXPOSE PORT[/PROTO]...")?;
            Kind::Expose(rest.trim().to_string())
        }
        "VOLUME" => {
            no_flags(rest)?;
            need("a path")?;
            match json_list(rest) {
                Some(v) => Kind::Volume(v, true),
                None => Kind::Volume(
                    split_raw(rest, escape).map_err(|e| format!("VOLUME: {e}"))?,
                    false,
                ),
            }
        }
        "ENTRYPOINT" | "CMD" => {
            need("a command")?;
            let c = cmdline(rest);
            if upper == "CMD" {
                Kind::Cmd(c)
            } else {
                Kind::Entrypoint(c)
            }
        }
        "SHELL" => match json_list(rest) {
            Some(v) if !v.is_empty() => Kind::Shell(v),
            _ => return Err("SHELL takes a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]".into()),
        },
        "STOPSIGNAL" => {
            no_flags(rest)?;
            need("a signal")?;
            Kind::StopSignal(rest.trim().to_string())
        }
        "HEALTHCHECK" => {
            let (f, rest) = flags(
                rest,
                &[
                    ("interval", false),
                    ("timeout", false),
                    ("start-period", false),
                    ("start-interval", false),
                    ("retries", false),
                ],
            )?;
            let (w, args) = split_word(rest);
            let cmd = match w.to_ascii_uppercase().as_str() {
                "NONE" if args.is_empty() => None,
                "NONE" => return Err("HEALTHCHECK NONE takes no arguments".into()),
                "CMD" if !args.is_empty() => Some(cmdline(args)),
                _ => return Err("HEALTHCHECK takes [OPTIONS] CMD COMMAND, or NONE".into()),
            };
            if cmd.is_none() && !f.0.is_empty() {
                return Err("HEALTHCHECK NONE takes no options".into());
            }
            Kind::Healthcheck(HealthInstr {
                interval: f.one("interval"),
                timeout: f.one("timeout"),
                start_period: f.one("start-period"),
                start_interval: f.one("start-interval"),
                retries: f.one("retries"),
                cmd,
            })
        }
        "ONBUILD" => {
            need("an instruction")?;
            let (w, r) = split_word(rest);
            let u = w.to_ascii_uppercase();
            if matches!(u.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(format!("{u} is not allowed as an ONBUILD trigger"));
            }
            let inner = parse_instruction(&u, r, escape, Vec::new())?;
            Kind::OnBuild(rest.trim().to_string(), Box::new(inner))
        }
        "MAINTAINER" => {
            need("a name")?;
            Kind::Maintainer(rest.trim().to_string())
        }
        "" => return Err("empty instruction".into()),
        other => {
            return Err(match nearest(other) {
                Some(n) => format!("unknown instruction: {other} (did you mean {n}?)"),
                None => format!("unknown instruction: {other}"),
            })
        }
    })
}

const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn nearest(w: &str) -> Option<&'static str> {
    let d = |a: &str, b: &str| -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for i in 1..=a.len() {
            let mut cur = vec![i; b.len() + 1];
            for j in 1..=b.len() {
                let c = usize::from(a[i - 1] != b[j - 1]);
                cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + c);
            }
            prev = cur;
        }
        prev[b.len()]
    };
    INSTRUCTIONS
        .iter()
        .map(|i| (d(w, i), *i))
        .filter(|(n, _)| *n <= 2)
        .min()
        .map(|(_, i)| i)
}

/// A JSON array of strings, or None (then the shell form applies).
fn json_list(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn cmdline(rest: &str) -> CmdLine {
    match json_list(rest) {
        Some(v) => CmdLine::Exec(v),
        None => CmdLine::Shell(rest.trim().to_string()),
    }
}

/// `KEY=VALUE ...`, or the legacy `KEY VALUE WITH SPACES` (one pair).
fn name_values(upper: &str, rest: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let words = split_raw(rest, escape).map_err(|e| format!("{upper}: {e}"))?;
    let first_has_eq = words.first().is_some_and(|w| w.contains('='));
    if !first_has_eq {
        // Legacy form: the first word is the key, the rest of the line the value.
        let (k, v) = split_word(rest);
        if v.is_empty() {
            return Err(format!("{upper} {k} needs a value: {upper} {k}=VALUE"));
        }
        return Ok(vec![(k.to_string(), v.to_string())]);
    }
    let mut out = Vec::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            _ => {
                return Err(format!(
                    "{upper}: '{w}' is not KEY=VALUE; quote values with spaces"
                ))
            }
        }
    }
    Ok(out)
}

/// Parsed flags: `(name, value)` in order.
struct Flags(Vec<(String, Option<String>)>);

impl Flags {
    fn one(&self, n: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone().unwrap_or_default())
    }

    fn all(&self, n: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.clone().unwrap_or_default())
            .collect()
    }

    fn bool(&self, n: &str) -> Result<bool, String> {
        match self.0.iter().find(|(k, _)| k == n) {
            None => Ok(false),
            Some((_, None)) => Ok(true),
            Some((_, Some(v))) => match v.as_str() {
                "true" | "" => Ok(true),
                "false" => Ok(false),
                other => Err(format!("--{n} takes true or false, not '{other}'")),
            },
        }
    }
}

/// Takes the leading `--flag[=value]` words off `rest`. `allowed` lists each flag and
/// whether it may repeat.
fn flags<'a>(rest: &'a str, allowed: &[(&str, bool)]) -> Result<(Flags, &'a str), String> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut s = rest.trim_start();
    while let Some(body) = s.strip_prefix("--") {
        // One word, with quotes removed.
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut end = body.len();
        for (i, c) in body.char_indices() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => word.push(c),
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c.is_whitespace() => {
                    end = i;
                    break;
                }
                None => word.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote in a flag".into());
        }
        s = body[end..].trim_start();
        if word.is_empty() {
            break; // `--` ends the flags
        }
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (word.clone(), None),
        };
        let Some((_, multi)) = allowed.iter().find(|(n, _)| *n == name) else {
            let known: Vec<String> = allowed.iter().map(|(n, _)| format!("--{n}")).collect();
            return Err(if known.is_empty() {
                format!("unknown flag: --{name}")
            } else {
                format!(
                    "unknown flag: --{name} (this instruction takes {})",
                    known.join(", ")
                )
            });
        };
        if !multi && out.iter().any(|(k, _)| *k == name) {
            return Err(format!("flag --{name} is given twice; give it once"));
        }
        out.push((name, value));
    }
    Ok((Flags(out), s))
}
