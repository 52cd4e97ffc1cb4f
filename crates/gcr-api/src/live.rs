//! The live events of MiniContainer deployments (seed 002), read from the engine's event
//! log: each engine event that is a run state, a deploy step or a materialized grant
//! becomes one named event (`run_state.pending|running|exited|failed`, `deploy.planned|
//! applied|failed`, `grant.materialized`, `minicontainer.applied`) with a JSON payload; the
//! others are not part of
//! this feed. The event's id is the engine's event number, so a feed resumes exactly.

use gcr_engine::events::Event;
use gcr_engine::logs::rfc3339_nanos;
use serde_json::{json, Map, Value};

/// The engine event kinds this feed is made of.
pub const KINDS: &[&str] = &["container", "run_state", "deploy", "grant", "minicontainer"];

/// The event families (the part of a name before its `.`) and the engine kinds each is
/// made of: what `types` filters may name.
const FAMILIES: &[(&str, &[&str])] = &[
    ("run_state", &["container", "run_state"]),
    ("deploy", &["deploy"]),
    ("grant", &["grant"]),
    ("minicontainer", &["minicontainer"]),
];

/// One live event.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub id: i64,
    pub name: String,
    pub data: Value,
}

impl Live {
    /// The event in the SSE wire format (`id:`, `event:`, `data:`, a blank line).
    pub fn sse(&self) -> String {
        format!(
            "id: {}\nevent: {}\ndata: {}\n\n",
            self.id, self.name, self.data
        )
    }

    /// The event as a polling answer lists it.
    pub fn json(&self) -> Value {
        json!({ "id": self.id, "event": self.name, "data": self.data })
    }
}

fn base(e: &Event) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("time".into(), rfc3339_nanos(e.time_ns).into());
    m.insert("time_ns".into(), e.time_ns.into());
    m
}

/// The run state a container transition means, if any.
fn run_state(e: &Event) -> Option<&'static str> {
    let cause = e.cause.as_deref().unwrap_or("");
    match (e.from.as_deref(), e.to.as_deref()) {
        (None, Some("created")) => Some("pending"),
        // A launch that failed after its row was stored running.
        (Some("running"), Some("created")) if cause == "error" => Some("failed"),
        (Some(f), Some("running")) if f != "running" && f != "paused" => Some("running"),
        (Some(f), Some("exited")) if f != "exited" => Some("exited"),
        _ => None,
    }
}

/// The live event of engine event `e`, if it is one.
pub fn live(e: &Event) -> Option<Live> {
    let mut d = base(e);
    let name = match e.kind.as_str() {
        "container" => {
            let state = run_state(e)?;
            d.insert("container_id".into(), e.object.clone().into());
            d.insert("name".into(), json!(e.name));
            d.insert("state".into(), state.into());
            d.insert("from".into(), json!(e.from));
            d.insert("cause".into(), json!(e.cause));
            if state == "exited" {
                d.insert("exit_code".into(), json!(e.exit_code));
                d.insert(
                    "oom_killed".into(),
                    (e.cause.as_deref() == Some("oom")).into(),
                );
            }
            format!("run_state.{state}")
        }
        // Recorded by a manifest apply. Its `running` repeats the container's own start
        // (above), so only its `failed` (an apply that ran nothing) is an event here.
        "run_state" if e.to.as_deref() == Some("failed") => {
            d.insert("deploy_digest".into(), e.object.clone().into());
            d.insert("name".into(), json!(e.name));
            d.insert("state".into(), "failed".into());
            d.insert("code".into(), json!(e.cause));
            "run_state.failed".to_string()
        }
        "deploy" => {
            let step = e.to.as_deref()?;
            d.insert("digest".into(), e.object.clone().into());
            d.insert("name".into(), json!(e.name));
            match step {
                "planned" => d.insert("reference".into(), json!(e.cause)),
                "applied" => d.insert("container_id".into(), json!(e.cause)),
                _ => d.insert("reason".into(), json!(e.cause)),
            };
            format!("deploy.{step}")
        }
        // One per apply (seed 002 §8): `ok`, or the error's code and reason.
        "minicontainer" if e.to.as_deref() == Some("applied") => {
            let cause = e.cause.as_deref().unwrap_or("");
            d.insert("digest".into(), e.object.clone().into());
            d.insert("name".into(), json!(e.name));
            d.insert("ok".into(), (cause == "ok").into());
            if cause != "ok" {
                let (code, reason) = cause.split_once(": ").unwrap_or((cause, ""));
                d.insert("code".into(), code.into());
                d.insert("reason".into(), reason.into());
            }
            "minicontainer.applied".to_string()
        }
        "grant" if e.to.as_deref() == Some("materialized") => {
            d.insert("container_id".into(), e.object.clone().into());
            d.insert("name".into(), json!(e.name));
            let g: Value = e
                .cause
                .as_deref()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or(Value::Null);
            for k in ["secret", "secret_id", "digest", "as"] {
                d.insert(k.into(), g.get(k).cloned().unwrap_or(Value::Null));
            }
            "grant.materialized".to_string()
        }
        _ => return None,
    };
    Some(Live {
        id: e.seq,
        name,
        data: Value::Object(d),
    })
}

/// The engine kinds of the family of event name or prefix `t`, if it has one.
fn family(t: &str) -> Option<&'static [&'static str]> {
    let fam = t.split('.').next().unwrap_or("");
    FAMILIES.iter().find(|(f, _)| *f == fam).map(|(_, k)| *k)
}

/// Which live events a client asked for: event-name prefixes (`types=run_state,deploy`)
/// and containers (`container=` id prefix or name); empty lists pass everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub types: Vec<String>,
    pub containers: Vec<String>,
}

impl Filter {
    /// The filter of event names or prefixes `types` (empty: all); a type of no family is
    /// the error's sentence.
    pub fn of_types(types: Vec<String>) -> Result<Filter, String> {
        if let Some(t) = types.iter().find(|t| family(t).is_none()) {
            return Err(format!(
                "invalid types '{t}': the live events are run_state.*, deploy.*, grant.* and minicontainer.*; give one of those prefixes"
            ));
        }
        Ok(Filter {
            types,
            containers: Vec::new(),
        })
    }

    /// The engine kinds that can pass (fewer rows read).
    pub fn kinds(&self) -> Vec<&'static str> {
        if self.types.is_empty() {
            return KINDS.to_vec();
        }
        let mut out = Vec::new();
        for t in &self.types {
            for k in family(t).unwrap_or(&[]) {
                if !out.contains(k) {
                    out.push(*k);
                }
            }
        }
        out
    }

    pub fn passes(&self, l: &Live) -> bool {
        let typed = self.types.is_empty()
            || self.types.iter().any(|t| {
                l.name == *t
                    || l.name
                        .strip_prefix(t.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            });
        let contained = self.containers.is_empty()
            || self.containers.iter().any(|c| {
                let id = l.data["container_id"].as_str().unwrap_or("");
                (!c.is_empty() && id.starts_with(c.as_str())) || l.data["name"] == c.as_str()
            });
        typed && contained
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64, kind: &str, from: Option<&str>, to: Option<&str>, cause: &str) -> Event {
        Event {
            seq,
            time_ns: 1_700_000_000_000_000_000,
            kind: kind.into(),
            object: "abc123".into(),
            name: Some("web".into()),
            from: from.map(Into::into),
            to: to.map(Into::into),
            cause: Some(cause.into()),
            exit_code: (to == Some("exited")).then_some(3),
            attributes: None,
        }
    }

    #[test]
    fn container_transitions_become_run_states() {
        let names: Vec<String> = [
            ev(1, "container", None, Some("created"), "create"),
            ev(2, "container", Some("created"), Some("running"), "start"),
            ev(3, "container", Some("running"), Some("paused"), "pause"),
            ev(4, "container", Some("paused"), Some("running"), "unpause"),
            ev(5, "container", Some("running"), Some("exited"), "die"),
            ev(6, "container", Some("exited"), None, "rm"),
            ev(7, "image", None, Some("pull"), "pull"),
        ]
        .iter()
        .filter_map(live)
        .map(|l| l.name)
        .collect();
        assert_eq!(
            names,
            ["run_state.pending", "run_state.running", "run_state.exited"]
        );
        let l = live(&ev(5, "container", Some("running"), Some("exited"), "die")).unwrap();
        assert_eq!(l.data["exit_code"], 3);
        assert_eq!(l.id, 5);
        assert!(l
            .sse()
            .starts_with("id: 5\nevent: run_state.exited\ndata: {"));
        assert!(l.sse().ends_with("}\n\n"));
    }

    #[test]
    fn filters_by_prefix_and_container() {
        let l = live(&ev(
            2,
            "container",
            Some("created"),
            Some("running"),
            "start",
        ))
        .unwrap();
        let f = |t: &[&str], c: &[&str]| Filter {
            types: t.iter().map(|s| s.to_string()).collect(),
            containers: c.iter().map(|s| s.to_string()).collect(),
        };
        assert!(f(&[], &[]).passes(&l));
        assert!(f(&["run_state"], &[]).passes(&l));
        assert!(f(&["run_state.running"], &["web"]).passes(&l));
        assert!(f(&[], &["abc"]).passes(&l));
        assert!(!f(&["run_stat"], &[]).passes(&l));
        assert!(!f(&["deploy"], &[]).passes(&l));
        assert!(!f(&[], &["other"]).passes(&l));
        assert_eq!(f(&["grant"], &[]).kinds(), ["grant"]);
    }
}
