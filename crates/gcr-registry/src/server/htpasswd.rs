//! Users and permissions for `gcr registry serve --htpasswd FILE`: bcrypt htpasswd lines
//! (`htpasswd -B`), each optionally followed by a third field of per-repository
//! permissions, `user:$2y$...:team/*=rw,public/*=r,other=r`. A line without that field
//! grants read and write on every repository. Verified passwords are cached in memory
//! (as sha256 of user and password) so bcrypt runs once per user, not once per request.

use crate::error::{RegistryError, Result};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// What a request needs on a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    read: bool,
    write: bool,
}

#[derive(Debug)]
struct User {
    hash: String,
    /// Empty: read and write everywhere.
    rules: Vec<Rule>,
}

/// The parsed htpasswd file.
#[derive(Debug)]
pub struct Htpasswd {
    users: HashMap<String, User>,
    verified: Mutex<HashSet<String>>,
}

fn matches(pattern: &str, repo: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => repo.starts_with(prefix),
        None => pattern == repo,
    }
}

impl Htpasswd {
    /// Parses the file's text; `path` is for messages.
    pub fn parse(text: &str, path: &str) -> Result<Htpasswd> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| RegistryError::Usage(format!("{path} line {}: {why}", n + 1));
            let mut parts = line.splitn(3, ':');
            let user = parts.next().unwrap_or("");
            let hash = parts
                .next()
                .ok_or_else(|| bad("expected user:bcrypt-hash"))?;
            if user.is_empty() {
                return Err(bad("the user name is empty"));
            }
            if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")) {
                return Err(bad(
                    "only bcrypt entries are supported; create them with 'htpasswd -B'",
                ));
            }
            let mut rules = Vec::new();
            if let Some(spec) = parts.next().filter(|s| !s.trim().is_empty()) {
                for item in spec.split(',') {
                    let (pattern, perm) = item
                        .trim()
                        .split_once('=')
                        .ok_or_else(|| bad("permissions must look like 'repo/*=rw,other=r'"))?;
                    let perm = perm.trim();
                    if perm.is_empty() || !perm.chars().all(|c| c == 'r' || c == 'w') {
                        return Err(bad("a permission is r, w or rw"));
                    }
                    rules.push(Rule {
                        pattern: pattern.trim().to_string(),
                        read: perm.contains('r'),
                        write: perm.contains('w'),
                    });
                }
            }
            users.insert(
                user.to_string(),
                User {
                    hash: hash.to_string(),
                    rules,
                },
            );
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Loads a file.
    pub fn load(path: &std::path::Path) -> Result<Htpasswd> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RegistryError::io("cannot read htpasswd file", path, e))?;
        Htpasswd::parse(&text, &path.display().to_string())
    }

    /// True when the password is right.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let Some(u) = self.users.get(user) else {
            return false;
        };
        let key = crate::media::sha256(format!("{user}\0{password}\0{}", u.hash).as_bytes());
        if self
            .verified
            .lock()
            .map(|g| g.contains(&key))
            .unwrap_or(false)
        {
            return true;
        }
        let ok = bcrypt::verify(password, &u.hash).unwrap_or(false);
        if ok {
            if let Ok(mut g) = self.verified.lock() {
                g.insert(key);
            }
        }
        ok
    }

    /// True when `user` may do `access` on `repo`.
    pub fn allowed(&self, user: &str, repo: &str, access: Access) -> bool {
        let Some(u) = self.users.get(user) else {
            return false;
        };
        if u.rules.is_empty() {
            return true;
        }
        u.rules.iter().any(|r| {
            matches(&r.pattern, repo)
                && match access {
                    Access::Read => r.read,
                    Access::Write => r.write,
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions() {
        let h4 = bcrypt::hash("pw", 4).unwrap();
        let text = format!("# users\nalice:{h4}\nbob:{h4}:team/*=rw,public=r\n");
        let h = Htpasswd::parse(&text, "f").unwrap();
        assert!(h.verify("alice", "pw") && h.verify("alice", "pw"));
        assert!(!h.verify("alice", "nope") && !h.verify("carol", "pw"));
        assert!(h.allowed("alice", "x/y", Access::Write));
        assert!(h.allowed("bob", "team/app", Access::Write));
        assert!(h.allowed("bob", "public", Access::Read));
        assert!(!h.allowed("bob", "public", Access::Write));
        assert!(!h.allowed("bob", "other", Access::Read));
        assert!(Htpasswd::parse("u:{SHA}abc", "f").is_err());
        assert!(Htpasswd::parse(&format!("u:{h4}:x=q"), "f").is_err());
    }
}
