//! The user namespace fields of a bundle (`linux.uidMappings`, `linux.gidMappings` and a
//! `user` namespace), checked before anything is made: a new user namespace needs at
//! least one mapping of each kind, and mappings need a user namespace (runc's rules); one
//! joined by path needs none. The namespace itself is made and mapped by gcr-runtime.

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::OciError;

fn given(m: Option<&Vec<LinuxIdMapping>>) -> bool {
    m.is_some_and(|v| !v.is_empty())
}

/// Refuses inconsistent user namespace fields, naming the field and the fix.
pub(crate) fn check(spec: &Spec) -> Result<(), OciError> {
    let Some(l) = spec.linux() else {
        return Ok(());
    };
    let user = l
        .namespaces()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User);
    let uids = given(l.uid_mappings().as_ref());
    let gids = given(l.gid_mappings().as_ref());
    match user {
        None if uids || gids => Err(OciError::Invalid(format!(
            "{} is set but linux.namespaces has no user namespace; add {{\"type\": \"user\"}} or remove the mappings",
            if uids { "linux.uidMappings" } else { "linux.gidMappings" }
        ))),
        // Joined: the namespace has its maps already (runc 1.1 wants them given anyway).
        Some(n) if n.path().is_some() => Ok(()),
        Some(_) if !uids || !gids => Err(OciError::Invalid(format!(
            "the user namespace has no {}; add at least one mapping such as {{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}}",
            if !uids { "linux.uidMappings" } else { "linux.gidMappings" }
        ))),
        _ => Ok(()),
    }
}
