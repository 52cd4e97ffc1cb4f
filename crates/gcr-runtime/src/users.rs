//! User and group names of an image, looked up in its own `/etc/passwd` and `/etc/group`
//! through the merged view of its layers ([`crate::layerfs`]), never on the host: what
//! `USER`, `--user`, `exec -u` and a build's `COPY --chown` mean.

use std::path::Path;

/// Why a user or group could not be resolved (a sentence naming it and the fix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// Reads the image's `/etc/<file>` as the container will see it: whiteouts and opaque
/// directories honoured, symlinks resolved inside the image.
pub fn image_file<P: AsRef<Path>>(lowers: &[P], file: &str) -> Option<String> {
    let root = crate::layerfs::Dir::root(lowers).ok()?;
    let bytes = root
        .read_file(&Path::new("/etc").join(file))
        .ok()
        .flatten()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn lookup_passwd(passwd: &str, key: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || (f[0] != key && f[2] != key) {
            return None;
        }
        Some((f[2].parse().ok()?, f[3].parse().ok()?))
    })
}

fn lookup_group(group: &str, key: &str) -> Option<u32> {
    group.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || (f[0] != key && f[2] != key) {
            return None;
        }
        f[2].parse().ok()
    })
}

/// Supplementary groups of a user name from `/etc/group`.
fn supplementary(group: &str, user: &str, primary: u32) -> Vec<u32> {
    group
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 || !f[3].split(',').any(|m| m == user) {
                return None;
            }
            f[2].parse::<u32>().ok().filter(|g| *g != primary)
        })
        .collect()
}

/// A group's id: a number as given, else looked up in `group` (the image's /etc/group,
/// read when first needed).
fn group_id(group: &dyn Fn() -> String, g: &str) -> Result<u32, UserError> {
    match g.parse::<u32>() {
        Ok(n) => Ok(n),
        Err(_) => lookup_group(&group(), g).ok_or_else(|| {
            UserError(format!(
                "unable to find group {g}: no matching entries in the image's /etc/group; use a numeric gid"
            ))
        }),
    }
}

/// The ids of `groups` (`--group-add`): numbers as given, names from the image's
/// /etc/group (read at most once).
pub fn group_ids<P: AsRef<Path>>(groups: &[String], lowers: &[P]) -> Result<Vec<u32>, UserError> {
    let cell = std::cell::OnceCell::new();
    let group = || {
        cell.get_or_init(|| image_file(lowers, "group").unwrap_or_default())
            .clone()
    };
    groups.iter().map(|g| group_id(&group, g)).collect()
}

/// Resolves `user[:group]` (names or numbers) as a process user: uid, primary gid (from
/// the passwd entry, else 0, unless a group is given) and supplementary groups.
pub fn resolve_user<P: AsRef<Path>>(
    spec: &str,
    lowers: &[P],
) -> Result<(u32, u32, Vec<u32>), UserError> {
    if spec.is_empty() {
        return Ok((0, 0, vec![]));
    }
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = image_file(lowers, "passwd").unwrap_or_default();
    let (uid, mut gid, name) = match u.parse::<u32>() {
        Ok(uid) => {
            let found = lookup_passwd(&passwd, u);
            (uid, found.map(|f| f.1).unwrap_or(0), None)
        }
        Err(_) => {
            let (uid, gid) = lookup_passwd(&passwd, u).ok_or_else(|| {
                UserError(format!(
                    "unable to find user {u}: no matching entries in the image's /etc/passwd; use a numeric uid:gid"
                ))
            })?;
            (uid, gid, Some(u))
        }
    };
    // /etc/group is read at most once, and only for a group or user name.
    let cell = std::cell::OnceCell::new();
    let group = || {
        cell.get_or_init(|| image_file(lowers, "group").unwrap_or_default())
            .clone()
    };
    if let Some(g) = g {
        gid = group_id(&group, g)?;
    }
    let extra = name
        .map(|n| supplementary(&group(), n, gid))
        .unwrap_or_default();
    Ok((uid, gid, extra))
}

/// Resolves a `COPY --chown` owner: `user[:group]`; without a group, the group is the
/// user's numeric id (Docker's rule for --chown, unlike USER).
pub fn resolve_owner<P: AsRef<Path>>(spec: &str, lowers: &[P]) -> Result<(u32, u32), UserError> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            lookup_passwd(&image_file(lowers, "passwd").unwrap_or_default(), u)
                .ok_or_else(|| {
                    UserError(format!(
                        "unable to find user {u}: no matching entries in the image's /etc/passwd; use a numeric uid:gid"
                    ))
                })?
                .0
        }
    };
    let gid = match g {
        Some(g) => group_id(&|| image_file(lowers, "group").unwrap_or_default(), g)?,
        None => uid,
    };
    Ok((uid, gid))
}

/// The home directory of `user` (a name or uid, before any `:group`) in the image's
/// passwd, else `/` (Docker's rule for HOME).
pub fn home<P: AsRef<Path>>(user: &str, lowers: &[P]) -> String {
    let u = user.split(':').next().unwrap_or("");
    let u = if u.is_empty() { "0" } else { u };
    let passwd = image_file(lowers, "passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 6 && (f[0] == u || f[2] == u) && !f[5].is_empty()).then(|| f[5].to_string())
        })
        .unwrap_or_else(|| "/".into())
}
