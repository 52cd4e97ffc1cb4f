//! `gcr attach` and the attach of `start -a/-i` and `run -it`: options, exit codes, and
//! the log-following attach of a container held by a foreground `gcr run`.

use gcr_engine::container::attached::{AttachEnd, AttachOptions};
use gcr_engine::logs::LogOptions;
use gcr_engine::{Engine, EngineError};

use crate::containers::{is_running, run_failure, usage};
use crate::out::Watched;
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
    follow_output(engine, key, None)
}

/// Follows a container's output (from record time `since`, else from now) to its exit.
pub(crate) fn follow_output(
    engine: &Engine,
    key: &str,
    since: Option<String>,
) -> Result<i32, Failure> {
    let r = engine.container(key).map_err(run_failure)?;
    let o = LogOptions {
        tail: if since.is_some() { None } else { Some(0) },
        follow: true,
        since,
        ..Default::default()
    };
    let path = engine.container_dir(&r.id).join("container.log");
    let watch = Watched::new();
    let mut running = || !watch.broken() && is_running(engine, &r.id);
    gcr_engine::logs::print(
        &path,
        &o,
        &mut watch.writer(),
        &mut std::io::stderr(),
        &mut running,
    )
    .map_err(run_failure)?;
    // A closed stdout detaches: the container runs on, as after Docker's detach keys.
    watch.finish()?;
    engine.wait(&r.id).map_err(run_failure)
}
