//! `gcr attach` and the attach of `start -a/-i` and `run -it`: options, exit codes, and
//! the log-following attach of a container held by a foreground `gcr run`.

use gcr_engine::container::attached::{AttachEnd, AttachOptions};
use gcr_engine::logs::LogOptions;
use gcr_engine::{Engine, EngineError};

use crate::containers::{print_log, run_failure, usage};
use crate::Failure;

/// What an attach relays: stdin when asked, both output streams, the detach keys.
pub(crate) fn attach_options(stdin: bool, keys: Option<&str>) -> Result<AttachOptions, Failure> {
    let detach_keys = match keys {
        None => gcr_engine::container::attached::DEFAULT_DETACH_KEYS.to_vec(),
        Some(k) => gcr_engine::container::attached::parse_detach_keys(k).map_err(usage)?,
    };
    Ok(AttachOptions {
        stdin,
        stdout: true,
        stderr: true,
        detach_keys,
    })
}

/// The exit code of an attach: the container's, or 0 after a detach.
pub(crate) fn attach_code(end: AttachEnd) -> i32 {
    match end {
        AttachEnd::Exited(c) => c,
        AttachEnd::Detached => 0,
    }
}

/// `gcr attach`: stdin (when the container has it open and not `--no-stdin`) and output
/// through its supervisor; a container held by a foreground `gcr run` is followed through
/// its log.
pub fn attach(
    engine: &Engine,
    key: &str,
    detach_keys: Option<&str>,
    no_stdin: bool,
) -> Result<i32, Failure> {
    let r = engine.container(key).map_err(run_failure)?;
    let o = attach_options(r.config.opts.interactive && !no_stdin, detach_keys)?;
    match engine.attach_container(&r.id, &o) {
        Ok(end) => Ok(attach_code(end)),
        Err(EngineError::Conflict(_)) if r.state.is_alive() => attach_to(engine, &r.id),
        Err(e) => Err(run_failure(e)),
    }
}

/// Follows the output of a running container and returns its exit code.
pub fn attach_to(engine: &Engine, key: &str) -> Result<i32, Failure> {
    let r = engine.container(key).map_err(run_failure)?;
    let o = LogOptions {
        tail: Some(0),
        follow: true,
        ..Default::default()
    };
    // A closed stdout detaches: the container runs on, as after Docker's detach keys.
    print_log(engine, &r.id, &o, run_failure)?;
    engine.wait(&r.id).map_err(run_failure)
}
