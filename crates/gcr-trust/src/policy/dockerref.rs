//! Docker references as containers-policy.json uses them: always the fully expanded form
//! (`docker.io/library/busybox:latest`, `host:5000/ns/app@sha256:…`), never the short one.
//! The engine normalizes what the user typed (gcr-core's `Reference`) and hands the parts
//! here; the policy's own strings (scopes, `dockerReference`, prefixes) are split with the
//! same rules. Scope lookup follows containers/image: the exact reference, then the
//! repository and each parent namespace up to the host, then `*.domain` wildcards of the
//! host (its port dropped), most specific first.

/// A fully expanded reference: `name` is `host[:port]/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRef {
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl DockerRef {
    /// Splits `host/path[:tag][@digest]`; None when it is empty, has whitespace or no
    /// host part.
    pub fn parse(s: &str) -> Option<DockerRef> {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) if d.contains(':') && !d.contains('/') => (r, Some(d.to_string())),
            Some(_) => return None,
            None => (s, None),
        };
        let last_slash = rest.rfind('/').unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) if last_slash > 0 => {
                let at = last_slash + i;
                (&rest[..at], Some(rest[at + 1..].to_string()))
            }
            _ => (rest, None),
        };
        if name.is_empty() || name.ends_with('/') || name.starts_with('/') || name.contains("//") {
            return None;
        }
        if tag.as_deref() == Some("") {
            return None;
        }
        Some(DockerRef {
            name: name.to_string(),
            tag,
            digest,
        })
    }

    /// The identity scope (`name:tag`, `name@digest`, `name:tag@digest`); None for a bare
    /// repository.
    pub fn identity(&self) -> Option<String> {
        if self.tag.is_none() && self.digest.is_none() {
            return None;
        }
        let mut s = self.name.clone();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        Some(s)
    }

    /// The host part (`host[:port]`).
    pub fn host(&self) -> &str {
        self.name.split('/').next().unwrap_or("")
    }

    /// The scopes that match this reference, most specific first (without "" and the
    /// global default).
    pub fn scopes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(id) = self.identity() {
            out.push(id);
        }
        let mut name = self.name.as_str();
        loop {
            out.push(name.to_string());
            match name.rfind('/') {
                Some(i) => name = &name[..i],
                None => break,
            }
        }
        let mut host = name.split(':').next().unwrap_or("");
        while let Some(i) = host.find('.') {
            host = &host[i + 1..];
            out.push(format!("*.{host}"));
        }
        out
    }

    /// True when `prefix` (a host, namespace or repository) is a path-component prefix
    /// of this reference's name.
    pub fn name_has_prefix(&self, prefix: &str) -> bool {
        self.name == prefix
            || (self.name.starts_with(prefix) && self.name[prefix.len()..].starts_with('/'))
    }
}
