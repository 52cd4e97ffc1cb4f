//! Docker's `--format`: `table` and `json` as before, or a Go template (gtmpl, a Rust
//! implementation of Go's text/template) applied to each object — `{{.Names}}`,
//! `{{.State.Status}}`, `{{json .Config}}`, `{{range}}`, `{{if}}`, and Docker's extra
//! functions (`json`, `upper`, `lower`, `title`, `join`, `split`, `truncate`, `pad`). A
//! template starting with `table` prints a header row (the field names, as Docker's
//! column titles) and aligns the columns.

use std::collections::HashMap;

use gtmpl::{Context, FuncError, Template, Value};

use crate::Failure;

/// What `--format` asked for.
pub enum Output {
    Table,
    Json,
    Template(Tmpl),
}

pub struct Tmpl {
    tmpl: Template,
    /// `table …`: the header row.
    header: Option<Vec<String>>,
    /// The template as text and field chains, when it is only that (see [`plan`]).
    plan: Option<Vec<Part>>,
}

/// A piece of a template made only of text and field chains.
enum Part {
    Text(String),
    /// `{{.State.Status}}`: the names along the chain.
    Field(Vec<String>),
}

/// Most `--format` strings are text and field chains (`{{.Names}}`, `{{ .State.Status }}`):
/// such a template is rendered by looking the fields up (see [`render_plan`]), without the
/// template engine's copies of the whole object for every one rendered (which were most of
/// `ps --format` over a few hundred containers). Anything else — functions, pipelines,
/// variables, `range`/`if`, trim markers, comments — has no plan and goes to the engine.
fn plan(body: &str) -> Option<Vec<Part>> {
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("{{") {
        if i > 0 {
            parts.push(Part::Text(rest[..i].to_string()));
        }
        let after = &rest[i + 2..];
        let end = after.find("}}")?;
        let path = after[..end].trim_matches(' ').strip_prefix('.')?;
        let names: Vec<String> = path.split('.').map(str::to_string).collect();
        let ident = |n: &String| {
            n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !names.iter().all(ident) {
            return None;
        }
        parts.push(Part::Field(names));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    Some(parts)
}

/// A planned template applied to `v`; None when a field is missing or is not a string, an
/// integer or a boolean (the engine renders those, with Go's formatting and errors).
fn render_plan(parts: &[Part], v: &serde_json::Value) -> Option<String> {
    use std::fmt::Write;
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::Field(names) => {
                let mut cur = v;
                for n in names {
                    cur = cur.as_object()?.get(n)?;
                }
                match cur {
                    serde_json::Value::String(s) => out.push_str(s),
                    serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                    serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
                        let _ = write!(out, "{n}");
                    }
                    _ => return None,
                }
            }
        }
    }
    Some(out)
}

impl Output {
    /// Parses a `--format` value (an unparsable template is exit 2, as a bad flag).
    pub fn parse(s: &str) -> Result<Output, Failure> {
        match s {
            "" | "table" => Ok(Output::Table),
            "json" | "{{json .}}" => Ok(Output::Json),
            t => Tmpl::new(t).map(Output::Template),
        }
    }
}

/// Docker's column titles for the fields a table template names.
fn title_of(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "CreatedAt" => "CREATED AT".into(),
        "RunningFor" => "CREATED".into(),
        "CreatedSince" => "CREATED".into(),
        other => {
            // CamelCase → UPPER CASE WORDS.
            let mut out = String::new();
            for (i, c) in other.chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    out.push(' ');
                }
                out.extend(c.to_uppercase());
            }
            out
        }
    }
}

/// `{{.A}}\t{{.B}}` → the header row `A B` with Docker's titles.
fn header_of(body: &str) -> Vec<String> {
    body.split('\t')
        .map(|col| {
            let names: Vec<String> = col
                .split("{{")
                .skip(1)
                .filter_map(|x| x.split("}}").next())
                .filter_map(|x| x.trim().rsplit('.').next().map(str::to_string))
                .filter(|x| !x.is_empty())
                .collect();
            names.first().map(|n| title_of(n)).unwrap_or_default()
        })
        .collect()
}

fn json_of(v: &Value) -> serde_json::Value {
    match v {
        Value::NoValue | Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::String(s) => s.clone().into(),
        Value::Number(n) => n
            .as_i64()
            .map(serde_json::Value::from)
            .or_else(|| n.as_u64().map(serde_json::Value::from))
            .or_else(|| n.as_f64().map(serde_json::Value::from))
            .unwrap_or(serde_json::Value::Null),
        Value::Array(a) => a.iter().map(json_of).collect(),
        Value::Object(m) | Value::Map(m) => {
            let mut o: Vec<(&String, &Value)> = m.iter().collect();
            o.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(
                o.into_iter()
                    .map(|(k, v)| (k.clone(), json_of(v)))
                    .collect(),
            )
        }
        Value::Function(_) => serde_json::Value::Null,
    }
}

/// Docker's fields that are Go maps, not structs: a key they lack reads `<no value>` (a
/// struct's missing field is an error).
const MAPS: &[&str] = &[
    "Labels",
    "Attributes",
    "Options",
    "Networks",
    "Ports",
    "Volumes",
];

/// A JSON value as a template value.
pub fn value_of(v: &serde_json::Value) -> Value {
    value_under(None, v)
}

fn value_under(key: Option<&str>, v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .unwrap_or_else(|| Value::from(n.as_f64().unwrap_or(0.0))),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(value_of).collect()),
        serde_json::Value::Object(o) => {
            let m = o
                .iter()
                .map(|(k, v)| (k.clone(), value_under(Some(k), v)))
                .collect::<HashMap<_, _>>();
            if key.is_some_and(|k| MAPS.contains(&k)) {
                Value::Map(m)
            } else {
                Value::Object(m)
            }
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::NoValue | Value::Nil => String::new(),
        other => match json_of(other) {
            serde_json::Value::String(s) => s,
            j => j.to_string(),
        },
    }
}

fn arg<'a>(args: &'a [Value], i: usize, f: &str) -> Result<&'a Value, FuncError> {
    args.get(i)
        .ok_or_else(|| FuncError::AtLeastXArgs(f.into(), i + 1))
}

fn f_json(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(json_of(arg(args, 0, "json")?).to_string()))
}
fn f_upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text(arg(args, 0, "upper")?).to_uppercase()))
}
fn f_lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text(arg(args, 0, "lower")?).to_lowercase()))
}
fn f_title(args: &[Value]) -> Result<Value, FuncError> {
    let s = text(arg(args, 0, "title")?);
    let mut c = s.chars();
    Ok(Value::String(match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }))
}
fn f_join(args: &[Value]) -> Result<Value, FuncError> {
    let sep = text(arg(args, 1, "join")?);
    let items: Vec<String> = match arg(args, 0, "join")? {
        Value::Array(a) => a.iter().map(text).collect(),
        other => vec![text(other)],
    };
    Ok(Value::String(items.join(&sep)))
}
fn f_split(args: &[Value]) -> Result<Value, FuncError> {
    let s = text(arg(args, 0, "split")?);
    let sep = text(arg(args, 1, "split")?);
    Ok(Value::Array(
        s.split(sep.as_str())
            .map(|x| Value::String(x.into()))
            .collect(),
    ))
}
fn f_truncate(args: &[Value]) -> Result<Value, FuncError> {
    let s = text(arg(args, 0, "truncate")?);
    let n = text(arg(args, 1, "truncate")?)
        .parse::<usize>()
        .unwrap_or(usize::MAX);
    Ok(Value::String(s.chars().take(n).collect()))
}
fn f_pad(args: &[Value]) -> Result<Value, FuncError> {
    let s = text(arg(args, 0, "pad")?);
    let l = text(arg(args, 1, "pad")?).parse::<usize>().unwrap_or(0);
    let r = text(arg(args, 2, "pad")?).parse::<usize>().unwrap_or(0);
    Ok(Value::String(format!(
        "{}{s}{}",
        " ".repeat(l),
        " ".repeat(r)
    )))
}

impl Tmpl {
    fn new(s: &str) -> Result<Tmpl, Failure> {
        // Docker's templates write `\t` and `\n` as escapes in the flag.
        let s_raw = s;
        let s = s.replace("\\t", "\t").replace("\\n", "\n");
        let (body, header) = match s.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                let body = rest.trim_start().to_string();
                let h = header_of(&body);
                (body, Some(h))
            }
            _ => (s.to_string(), None),
        };
        let mut tmpl = Template::default();
        tmpl.add_funcs(&[
            ("json", f_json as gtmpl::Func),
            ("upper", f_upper as gtmpl::Func),
            ("lower", f_lower as gtmpl::Func),
            ("title", f_title as gtmpl::Func),
            ("join", f_join as gtmpl::Func),
            ("split", f_split as gtmpl::Func),
            ("truncate", f_truncate as gtmpl::Func),
            ("pad", f_pad as gtmpl::Func),
        ]);
        let plan = plan(&body);
        tmpl.parse(body).map_err(|e| {
            Failure::new(
                2,
                format!("invalid --format template '{s_raw}': {e}; see Go's text/template syntax"),
            )
        })?;
        Ok(Tmpl { tmpl, header, plan })
    }

    /// The header row of a `table …` template, tab-separated (for streamed output, which
    /// cannot align its rows ahead).
    pub fn header_line(&self) -> Option<String> {
        self.header.as_ref().map(|h| h.join("\t"))
    }

    /// One object rendered.
    pub fn render(&self, v: &serde_json::Value) -> Result<String, Failure> {
        if let Some(s) = self.plan.as_deref().and_then(|p| render_plan(p, v)) {
            return Ok(s);
        }
        self.render_slow(v)
    }

    /// One object rendered by the template engine.
    fn render_slow(&self, v: &serde_json::Value) -> Result<String, Failure> {
        self.tmpl
            .render(&Context::from(value_of(v)))
            .map_err(|e| Failure::new(1, format!("the --format template failed: {e}")))
    }

    /// Every object, one per line (aligned under a header for `table`).
    pub fn print(&self, items: &[serde_json::Value]) -> Result<(), Failure> {
        let mut lines = Vec::with_capacity(items.len());
        for v in items {
            lines.push(self.render(v)?);
        }
        match &self.header {
            Some(h) => {
                let rows: Vec<Vec<String>> = lines
                    .iter()
                    .map(|l| l.split('\t').map(str::to_string).collect())
                    .collect();
                let headers: Vec<&str> = h.iter().map(String::as_str).collect();
                crate::render::table_out(&headers, &rows)
            }
            None => {
                // One write for all the lines (stdout is line-buffered: a write per line
                // was most of `ps --format` with a few hundred containers).
                let mut all = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
                for l in lines {
                    all.push_str(&l);
                    all.push('\n');
                }
                crate::out::bytes(all.as_bytes())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Tmpl {
        match Output::parse(s) {
            Ok(Output::Template(t)) => t,
            _ => panic!("{s} is not a template"),
        }
    }

    #[test]
    fn a_maps_missing_key_is_no_value_a_structs_is_an_error() {
        let v = serde_json::json!({"Actor": {"ID": "x", "Attributes": {"name": "web"}}});
        assert_eq!(
            t("{{.Actor.Attributes.name}} {{.Actor.Attributes.container}}")
                .render(&v)
                .unwrap(),
            "web <no value>"
        );
        assert!(t("{{.Actor.Nope}}").render(&v).is_err());
    }

    #[test]
    fn docker_templates_render() {
        let v = serde_json::json!({"Names": "web", "State": {"Status": "running", "Pid": 42},
            "Config": {"Env": ["A=1", "B=2"]}, "Labels": {"b": "2", "a": "1"}});
        assert_eq!(t("{{.Names}}").render(&v).unwrap(), "web");
        assert_eq!(
            t("{{.State.Status}} {{.State.Pid}}").render(&v).unwrap(),
            "running 42"
        );
        assert_eq!(
            t("{{json .Config}}").render(&v).unwrap(),
            r#"{"Env":["A=1","B=2"]}"#
        );
        assert_eq!(
            t("{{range .Config.Env}}{{.}};{{end}}").render(&v).unwrap(),
            "A=1;B=2;"
        );
        assert_eq!(
            t("{{join .Config.Env \",\"}}").render(&v).unwrap(),
            "A=1,B=2"
        );
        assert_eq!(t("{{upper .Names}}").render(&v).unwrap(), "WEB");
        assert_eq!(
            t("{{if eq .State.Status \"running\"}}up{{end}}")
                .render(&v)
                .unwrap(),
            "up"
        );
        assert_eq!(t("{{index .Labels \"a\"}}").render(&v).unwrap(), "1");
        assert!(matches!(Output::parse("json"), Ok(Output::Json)));
        assert!(matches!(Output::parse("table"), Ok(Output::Table)));
        assert!(Output::parse("{{.Names").is_err());
    }

    #[test]
    fn planned_templates_render_as_the_engine_does() {
        let v = serde_json::json!({"Names": "wéb", "N": 42, "Neg": -3, "Up": true,
            "State": {"Status": "running", "Pid": 42, "F": 1.5, "Nil": null},
            "Env": ["A=1"]});
        let planned = [
            "{{.Names}}",
            "{{ .Names }}",
            "x {{.Names}}\t{{.State.Status}} y",
            "{{.N}}/{{.Neg}}/{{.Up}}",
            "}} {{.State.Pid}}",
            "{{.Names}}{{.Names}}",
            "plain",
        ];
        for s in planned {
            let t = t(s);
            assert!(t.plan.is_some(), "{s} has a plan");
            assert!(render_plan(t.plan.as_deref().unwrap(), &v).is_some(), "{s}");
            assert_eq!(t.render(&v).unwrap(), t.render_slow(&v).unwrap(), "{s}");
        }
        // Values the plan leaves to the engine: it renders them, as before.
        for s in ["{{.State.F}}", "{{.Env}}", "{{.State.Nil}}"] {
            let t = t(s);
            assert!(render_plan(t.plan.as_deref().unwrap(), &v).is_none(), "{s}");
            assert_eq!(t.render(&v).unwrap(), t.render_slow(&v).unwrap(), "{s}");
        }
        assert!(
            t("{{.Missing}}").render(&v).is_err() == t("{{.Missing}}").render_slow(&v).is_err()
        );
        for s in [
            "{{- .Names}}",
            "{{.Names -}}",
            "{{json .Env}}",
            "{{.Names | upper}}",
            "{{$x := .Names}}{{$x}}",
            "{{range .Env}}{{.}}{{end}}",
            "{{/* c */}}",
            "{{.}}",
            "{{index .Env 0}}",
        ] {
            assert!(t(s).plan.is_none(), "{s} has no plan");
        }
    }

    #[test]
    fn table_templates_get_docker_headers() {
        assert_eq!(
            header_of("{{.ID}}\t{{.Names}}\t{{.RunningFor}}"),
            ["CONTAINER ID", "NAMES", "CREATED"]
        );
        assert_eq!(header_of("{{.State.Status}}"), ["STATUS"]);
    }
}
