//! The filters of Docker's prune verbs (`container|image|network|volume|system prune
//! --filter`, the API's `POST /…/prune?filters=`): `until` (only what was created before a
//! time: a duration such as `24h`, unix seconds or RFC 3339), `label` (only what carries a
//! label, `KEY` or `KEY=VALUE`) and `label!` (only what does not). Every filter given must
//! hold for an object to be pruned.

use crate::EngineError;

/// One `label`/`label!` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LabelRule {
    /// `label` (true) or `label!` (false).
    carries: bool,
    key: String,
    value: Option<String>,
}

/// What a prune may remove, besides its own rule (stopped, unused, dangling).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneFilter {
    /// Unix seconds: only objects created before.
    until: Option<i64>,
    labels: Vec<LabelRule>,
}

impl PruneFilter {
    /// Reads `pairs` (`until`, `label`, `label!`) for the prune of `what` (containers,
    /// images, ...), which takes the keys `keys`; another key or a bad value is a usage
    /// error naming it and the fix.
    pub fn parse(
        pairs: &[(String, String)],
        what: &str,
        keys: &[&str],
    ) -> Result<PruneFilter, EngineError> {
        let mut f = PruneFilter::default();
        for (k, v) in pairs {
            match k.as_str() {
                "until" if keys.contains(&"until") => {
                    let now = crate::container::record::now_ns();
                    let t = crate::events::parse_since(v, now).ok_or_else(|| {
                        EngineError::Usage(format!(
                            "invalid filter 'until={v}': use a duration (24h), unix seconds or RFC 3339"
                        ))
                    })?;
                    f.until = Some(t.div_euclid(1_000_000_000));
                }
                "label" | "label!" if keys.contains(&k.as_str()) => {
                    if v.is_empty() {
                        return Err(EngineError::Usage(format!(
                            "invalid filter '{k}=': give KEY or KEY=VALUE"
                        )));
                    }
                    let (key, value) = match v.split_once('=') {
                        Some((key, value)) => (key.to_string(), Some(value.to_string())),
                        None => (v.clone(), None),
                    };
                    f.labels.push(LabelRule {
                        carries: k == "label",
                        key,
                        value,
                    });
                }
                _ => {
                    return Err(EngineError::Usage(format!(
                        "invalid filter '{k}' for {what} prune: use {}",
                        keys.join(", ")
                    )))
                }
            }
        }
        Ok(f)
    }

    /// Whether an object created at `created` (unix seconds; None: unknown) with `labels`
    /// (its key and value pairs, walked once per label filter) may be pruned.
    pub fn admits<'a, L>(&self, created: Option<i64>, labels: L) -> bool
    where
        L: IntoIterator<Item = (&'a String, &'a String)> + Clone,
    {
        if let Some(until) = self.until {
            if created.is_none_or(|c| c >= until) {
                return false;
            }
        }
        self.labels.iter().all(|r| {
            let has = labels
                .clone()
                .into_iter()
                .any(|(k, v)| *k == r.key && r.value.as_ref().is_none_or(|want| want == v));
            has == r.carries
        })
    }

    /// Whether an `until` filter was given.
    pub fn has_until(&self) -> bool {
        self.until.is_some()
    }

    /// Whether it needs an object's labels (they are looked up only then).
    pub fn reads_labels(&self) -> bool {
        !self.labels.is_empty()
    }

    /// Whether no filter was given.
    pub fn is_empty(&self) -> bool {
        self.until.is_none() && self.labels.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pairs: &[(&str, &str)]) -> Result<PruneFilter, EngineError> {
        let p: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PruneFilter::parse(&p, "container", &["until", "label", "label!"])
    }

    fn l(kv: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn until_and_labels_decide_together() {
        let now = crate::container::record::now_ns() / 1_000_000_000;
        let old = Some(now - 2 * 86_400);
        let new = Some(now - 60);
        let day = f(&[("until", "24h")]).unwrap();
        assert!(
            day.admits(old, &l(&[])) && !day.admits(new, &l(&[])) && !day.admits(None, &l(&[]))
        );
        let abs = f(&[("until", &(now - 3600).to_string())]).unwrap();
        assert!(abs.admits(old, &l(&[])) && !abs.admits(new, &l(&[])));
        let keep = l(&[("keep", "yes"), ("tier", "web")]);
        let tier = f(&[("label", "tier=web")]).unwrap();
        assert!(tier.admits(new, &keep) && !tier.admits(new, &l(&[("tier", "db")])));
        let not_kept = f(&[("label!", "keep")]).unwrap();
        assert!(!not_kept.admits(new, &keep) && not_kept.admits(new, &l(&[("tier", "db")])));
        let both = f(&[("until", "24h"), ("label", "tier")]).unwrap();
        assert!(both.admits(old, &keep) && !both.admits(new, &keep) && !both.admits(old, &l(&[])));
        assert!(f(&[]).unwrap().is_empty() && f(&[]).unwrap().admits(None, &l(&[])));
        assert!(both.reads_labels() && !day.reads_labels());
    }

    #[test]
    fn bad_filters_name_themselves() {
        let e = f(&[("dangling", "true")]).unwrap_err().to_string();
        assert!(
            e.contains("'dangling'") && e.contains("until, label"),
            "{e}"
        );
        let e = f(&[("until", "someday")]).unwrap_err().to_string();
        assert!(e.contains("until=someday") && e.contains("24h"), "{e}");
        assert!(f(&[("label", "")]).is_err());
    }
}
