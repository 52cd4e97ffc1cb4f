//! Checks of the fields gcr-runc implements beyond the engine's needs: the personality
//! (flags refused, as runc 1.2 does), time namespaces with their offsets (a new time
//! namespace is needed for `timeOffsets`), and `hostname`/`domainname`, which need a UTS
//! namespace (runc: "unable to set hostname without a private UTS namespace").

use oci_spec::runtime::{Linux, LinuxNamespace, LinuxNamespaceType, Spec};

use crate::OciError;

pub(crate) fn check(spec: &Spec, l: &Linux, namespaces: &[LinuxNamespace]) -> Result<(), OciError> {
    let uts = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Uts);
    for (field, v) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if !uts && v.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(OciError::Invalid(format!(
                "unable to set {field} without a private UTS namespace: add {{\"type\":\"uts\"}} to linux.namespaces or remove {field}"
            )));
        }
    }
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
