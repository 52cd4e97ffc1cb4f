//! Checks of the `linux` fields gcr-runc implements beyond the engine's needs: the
//! personality (flags refused, as runc 1.2 does) and time namespaces with their
//! offsets (a new time namespace is needed for `timeOffsets`).

use oci_spec::runtime::{Linux, LinuxNamespace, LinuxNamespaceType};

use crate::OciError;

pub(crate) fn check(l: &Linux, namespaces: &[LinuxNamespace]) -> Result<(), OciError> {
    if l.personality()
        .as_ref()
        .is_some_and(|p| p.flags().as_ref().is_some_and(|f| !f.is_empty()))
    {
        return Err(OciError::unsupported("linux.personality.flags"));
    }
    let time = namespaces
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Time);
    let offsets = l.time_offsets().as_ref().is_some_and(|o| !o.is_empty());
    if offsets && !time.is_some_and(|n| n.path().is_none()) {
        return Err(OciError::Invalid(
            "linux.timeOffsets needs a new time namespace: add {\"type\":\"time\"} (without a path) to linux.namespaces".into(),
        ));
    }
    Ok(())
}
