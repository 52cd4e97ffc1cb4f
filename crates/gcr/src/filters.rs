//! Docker's `--filter KEY=VALUE` syntax for `ps` (matched by the engine's
//! `container::filter`, shared with the API), `images` (reference, dangling, label, before, since) and
//! `events` (type, container, event, image, label), `volume ls` (name, label, dangling,
//! driver), `network ls` (name, id, driver, type, label), and the time flags (`--since`, `--until`).
//! Values of one key are alternatives; different keys must all match.

use gcr_engine::images::ImageRow;

use gcr_engine::container::filter::label_matches;

use crate::Failure;

/// Parsed filters: (key, value) pairs, checked against the keys a command knows.
pub struct Filters(Vec<(String, String)>);

impl Filters {
    pub fn parse(raw: &[String], keys: &[&str], cmd: &str) -> Result<Filters, Failure> {
        let mut out = Vec::new();
        for f in raw {
            match f.split_once('=') {
                Some((k, v)) if keys.contains(&k) => out.push((k.to_string(), v.to_string())),
                _ => {
                    return Err(Failure::new(
                        2,
                        format!(
                            "invalid filter '{f}' for {cmd}: use KEY=VALUE with KEY one of {}",
                            keys.join(", ")
                        ),
                    ))
                }
            }
        }
        Ok(Filters(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The (key, value) pairs, for the engine's own filters (containers).
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// True when, for every key given, one of its values matches.
    fn all(&self, m: impl Fn(&str, &str) -> bool) -> bool {
        let mut keys: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.iter().all(|k| {
            self.0
                .iter()
                .filter(|(key, _)| key == k)
                .any(|(key, v)| m(key, v))
        })
    }

    /// `volume ls`: whether a volume passes (`in_use`: some container mounts it).
    pub fn volume(&self, name: &str, labels: &[(String, String)], in_use: bool) -> bool {
        self.all(|k, v| match k {
            "name" => name.contains(v),
            "label" => label_matches(labels, v),
            "dangling" => in_use != (v == "true" || v == "1"),
            "driver" => v == "local",
            _ => false,
        })
    }

    /// `network ls`: whether a network passes (`builtin`: none, host or the default
    /// bridge).
    pub fn network(
        &self,
        name: &str,
        id: &str,
        driver: &str,
        builtin: bool,
        labels: &[(String, String)],
    ) -> bool {
        self.all(|k, v| match k {
            "name" => name.contains(v),
            "label" => label_matches(labels, v),
            "id" => id.starts_with(v),
            "driver" => driver == v,
            "type" => (v == "builtin") == builtin && (v == "builtin" || v == "custom"),
            _ => false,
        })
    }

    /// `images`: whether a row passes (`labels` and `created` of its image are looked up
    /// only for the keys that need them).
    pub fn image(
        &self,
        row: &ImageRow,
        labels: &dyn Fn() -> Vec<(String, String)>,
        created_of: &dyn Fn(&str) -> Option<i64>,
    ) -> bool {
        self.all(|k, v| match k {
            "dangling" => (row.repository == "<none>") == (v == "true"),
            "reference" => gcr_engine::images::reference_matches(v, &row.repository, &row.tag),
            "label" => label_matches(&labels(), v),
            "before" => created_of(v).is_some_and(|t| row.created.is_some_and(|c| c < t)),
            "since" => created_of(v).is_some_and(|t| row.created.is_some_and(|c| c > t)),
            _ => false,
        })
    }
}

/// The `--filter KEY=VALUE` flags of a prune of `what`, which takes the keys `keys`
/// (`until`, `label`, `label!`; `label!=k` is the key `label!`).
pub fn prune_filter(
    flags: &[String],
    what: &str,
    keys: &[&str],
) -> Result<gcr_engine::prune::PruneFilter, Failure> {
    let pairs = flags
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| Failure::new(125, format!("invalid filter '{f}': use KEY=VALUE")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(gcr_engine::prune::PruneFilter::parse(&pairs, what, keys)?)
}

/// A `--since`/`--until` value (unix seconds, RFC 3339, or a duration ago) in unix ns.
pub fn time_flag(flag: &str, v: &str, now_ns: i64) -> Result<i64, Failure> {
    gcr_engine::events::parse_since(v, now_ns).ok_or_else(|| {
        Failure::new(
            2,
            format!("invalid {flag} '{v}': use unix seconds, an RFC 3339 time or a duration such as 10m"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_labels_and_keys() {
        use gcr_engine::images::reference_matches as m;
        assert!(m("test/*", "test/busybox", "1") && m("test/busybox", "test/busybox", "1"));
        assert!(!m("test/*", "test/a/b", "1") && !m("test/busybox:2", "test/busybox", "1"));
        assert!(m("*:1", "busybox", "1"));
        let l = vec![("tier".to_string(), "web".to_string())];
        assert!(label_matches(&l, "tier") && label_matches(&l, "tier=web"));
        assert!(!label_matches(&l, "tier=db"));
        assert!(Filters::parse(&["colour=red".into()], &["status"], "ps").is_err());
        let f = Filters::parse(&["status=exited".into()], &["status"], "ps").unwrap();
        assert!(!f.is_empty() && f.into_pairs() == [("status".to_string(), "exited".to_string())]);
    }
}
