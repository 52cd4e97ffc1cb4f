//! Events as Docker shows them, for both front-ends (`gcr events` and the API's
//! `GET /events`): Docker's action names, the message shape with the actor's attributes
//! (name, image, labels, a `die`'s `exitCode` — old clients read the exit code there), and
//! Docker's event filters (type, container, event, image, label, volume, network).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::events::Event;
use crate::{Engine, EngineError};

/// The event filter keys.
pub const KEYS: [&str; 7] = [
    "type",
    "container",
    "event",
    "image",
    "label",
    "volume",
    "network",
];

/// What a container event's attributes and filters need of its container (kept with
/// each container event since schema version 15).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Actor {
    pub image: String,
    pub image_id: String,
    pub labels: Vec<(String, String)>,
}

/// Containers' actors, looked up once per container (`None`: it was removed).
#[derive(Default)]
pub struct Actors(HashMap<String, Option<Actor>>);

impl Actors {
    /// The actor of `e` when it is a container event: as the event recorded it, or (an
    /// event recorded before events kept it) as its container is now, if it still exists.
    pub fn of(&mut self, engine: &Engine, e: &Event) -> Option<Actor> {
        if e.kind != "container" {
            return None;
        }
        if let Some(a) = e
            .attributes
            .as_deref()
            .and_then(|j| serde_json::from_str::<Actor>(j).ok())
        {
            return Some(a);
        }
        self.0
            .entry(e.object.clone())
            .or_insert_with(|| {
                engine.container(&e.object).ok().map(|r| Actor {
                    image: r.image_ref.clone(),
                    image_id: r.image_id.clone(),
                    labels: r.config.resolved.labels.clone(),
                })
            })
            .clone()
    }
}

/// Docker's action name for an event (gcr's `rm` cause is Docker's `destroy`; a grant's
/// cause is its JSON and a manifest apply's its outcome: their action is the state they went
/// to).
pub fn action(e: &Event) -> String {
    let a = e.cause.as_deref().or(e.to.as_deref()).unwrap_or("");
    match (e.kind.as_str(), a) {
        ("container", "rm") => "destroy".into(),
        ("grant" | "minicontainer", _) => e.to.clone().unwrap_or_default(),
        (_, a) => a.split(':').next().unwrap_or(a).to_string(),
    }
}

/// The event as the Engine API sends it (`events.Message`'s JSON).
pub fn message(e: &Event, a: Option<&Actor>) -> Value {
    let action = action(e);
    let mut attrs = Map::new();
    if let Some(a) = a {
        for (k, v) in &a.labels {
            attrs.insert(k.clone(), v.clone().into());
        }
        attrs.insert("image".into(), a.image.clone().into());
    }
    if e.kind != "container" {
        // A volume's or network's own attributes, as its event recorded them.
        if let Some(Value::Object(m)) = e
            .attributes
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
        {
            attrs.extend(m);
        }
    }
    if let Some(n) = &e.name {
        attrs.insert("name".into(), n.clone().into());
    }
    if action == "die" {
        if let Some(c) = e.exit_code {
            attrs.insert("exitCode".into(), c.to_string().into());
        }
    }
    let mut m = json!({
        "Type": e.kind,
        "Action": action,
        "Actor": { "ID": e.object, "Attributes": attrs },
        "scope": "local",
        "time": e.time_ns / 1_000_000_000,
        "timeNano": e.time_ns,
    });
    // The deprecated top-level fields of container and image events (old clients).
    if e.kind == "container" || e.kind == "image" {
        m["status"] = json!(action);
        m["id"] = json!(e.object);
        if let Some(a) = a {
            m["from"] = json!(a.image);
        }
    }
    m
}

/// Parsed event filters: values of one key are alternatives, different keys must all
/// match.
pub struct EventFilter(Vec<(String, String)>);

impl EventFilter {
    /// Checks the keys of `pairs`; an unknown one is a usage error naming it.
    pub fn new(pairs: Vec<(String, String)>) -> Result<EventFilter, EngineError> {
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !KEYS.contains(&k.as_str())) {
            return Err(EngineError::Usage(format!(
                "invalid filter '{k}': events filter by {}",
                KEYS.join(", ")
            )));
        }
        Ok(EventFilter(pairs))
    }

    /// Whether `e` (with its container's actor, if any) passes. A container's own record
    /// of joining or leaving a network (its config change, cause `connect: NET`) is not
    /// shown: dockerd has no such container action, and the network's `connect` or
    /// `disconnect` event written with it (the container an attribute) is Docker's.
    pub fn matches(&self, e: &Event, actor: Option<&Actor>) -> bool {
        let action = action(e);
        if e.kind == "container" && matches!(action.as_str(), "connect" | "disconnect") {
            return false;
        }
        let mut keys: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().all(|k| {
            self.0
                .iter()
                .filter(|(fk, _)| fk == k)
                .any(|(_, v)| passes(e, &action, actor, k, v))
        })
    }
}

fn passes(e: &Event, action: &str, actor: Option<&Actor>, key: &str, v: &str) -> bool {
    let named =
        |kind: &str| e.kind == kind && (e.object.starts_with(v) || e.name.as_deref() == Some(v));
    match key {
        "type" => e.kind == v,
        "event" => action == v,
        "container" => named("container"),
        "volume" => named("volume"),
        "network" => named("network"),
        "image" => match actor {
            // A container event matches by its container's image.
            Some(a) => crate::container::filter::image_matches(v, &a.image, &a.image_id),
            None => {
                let full = gcr_core::Reference::parse(v).map(|x| x.to_string());
                e.kind == "image"
                    && (e.name.as_deref() == Some(v)
                        || full.is_ok_and(|f| e.name.as_deref() == Some(f.as_str()))
                        || e.object
                            .trim_start_matches("sha256:")
                            .starts_with(v.trim_start_matches("sha256:")))
            }
        },
        "label" => actor.is_some_and(|a| crate::container::filter::label_matches(&a.labels, v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(cause: &str, exit: Option<i32>) -> Event {
        Event {
            seq: 1,
            time_ns: 5_000_000_123,
            kind: "container".into(),
            object: "abc123".into(),
            name: Some("web".into()),
            from: Some("running".into()),
            to: Some("exited".into()),
            cause: Some(cause.into()),
            exit_code: exit,
            attributes: None,
        }
    }

    #[test]
    fn messages_and_filters() {
        let a = Actor {
            image: "test/busybox:1".into(),
            image_id: "sha256:feed".into(),
            labels: vec![("tier".into(), "web".into())],
        };
        let m = message(&ev("die", Some(3)), Some(&a));
        assert_eq!(m["Action"], "die");
        assert_eq!(m["status"], "die");
        assert_eq!(m["from"], "test/busybox:1");
        assert_eq!(m["time"], 5);
        let attrs = &m["Actor"]["Attributes"];
        assert_eq!(attrs["exitCode"], "3");
        assert_eq!(attrs["image"], "test/busybox:1");
        assert_eq!(attrs["tier"], "web");
        assert_eq!(attrs["name"], "web");
        assert_eq!(message(&ev("rm", None), None)["Action"], "destroy");
        assert!(message(&ev("stop", Some(0)), None)["Actor"]["Attributes"]
            .get("exitCode")
            .is_none());
        let f = |p: &[(&str, &str)]| {
            EventFilter::new(
                p.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .unwrap()
        };
        let die = ev("die", Some(3));
        assert!(f(&[("label", "tier=web"), ("event", "die")]).matches(&die, Some(&a)));
        assert!(!f(&[("label", "tier=db")]).matches(&die, Some(&a)));
        assert!(f(&[("image", "test/busybox:1")]).matches(&die, Some(&a)));
        assert!(f(&[("container", "web"), ("container", "x")]).matches(&die, None));
        assert!(!f(&[("type", "image")]).matches(&die, None));
        assert!(EventFilter::new(vec![("colour".into(), "red".into())]).is_err());
        // A container's network config change is not a Docker event; the network's is.
        let joined = ev("connect: app", None);
        assert!(!f(&[]).matches(&joined, None));
        let net = Event {
            kind: "network".into(),
            ..ev("connect", None)
        };
        assert!(f(&[("event", "connect")]).matches(&net, None));
    }
}
