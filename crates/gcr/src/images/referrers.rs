//! `inspect --referrers` (an image's OCI 1.1 referrers as index descriptors) and the
//! hidden `__attach` test hook that makes a referrer from a file.

use gcr_engine::Engine;

use crate::cli::InspectArgs;
use crate::out::{errln, outln};
use crate::Failure;

/// `inspect --referrers`: per image, its manifest and its referrers as index descriptors.
pub(super) fn list(e: &Engine, a: &InspectArgs) -> Result<i32, Failure> {
    let mut docs = Vec::new();
    let mut code = 0;
    for o in &a.objects {
        match e.referrers(o, a.artifact_type.as_deref()) {
            Ok((subject, list)) => docs.push(serde_json::json!({
                "Image": o,
                "Subject": subject,
                "Referrers": list,
            })),
            Err(err) => {
                errln!("Error: {}", Failure::from(err).message);
                code = 1;
            }
        }
    }
    outln!(
        "{}",
        serde_json::to_string_pretty(&docs).unwrap_or_default()
    )?;
    Ok(code)
}

/// `__attach SUBJECT ARTIFACT_TYPE FILE`: the test hook that makes a referrer.
pub(super) fn attach(
    e: &Engine,
    subject: &str,
    artifact_type: &str,
    file: &std::path::Path,
    annotations: &[String],
) -> Result<i32, Failure> {
    let layer = std::fs::read(file).map_err(|err| {
        Failure::new(
            1,
            format!("cannot read {}: {err}; check the path", file.display()),
        )
    })?;
    let mut notes = std::collections::BTreeMap::new();
    for a in annotations {
        let Some((k, v)) = a.split_once('=') else {
            return Err(Failure::new(
                2,
                format!("annotation '{a}' is not KEY=VALUE; write it as KEY=VALUE"),
            ));
        };
        notes.insert(k.to_string(), v.to_string());
    }
    let d = e.attach(subject, artifact_type, notes, artifact_type, &layer)?;
    outln!("{d}")?;
    Ok(0)
}
