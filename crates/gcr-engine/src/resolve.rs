//! Resolves what a container will run from the image config and the run flags, with
//! Docker's rules: entrypoint/cmd merging, env precedence, workdir, user names looked up in
//! the image's own `/etc/passwd` and `/etc/group`.

use serde_json::Value;

use crate::container::config::{Resolved, RunOptions};
use crate::EngineError;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The `Labels` of an image config's `config` object `c`, as key and value pairs (a value
/// that is not a string reads as empty).
pub(crate) fn config_labels(c: &Value) -> Vec<(String, String)> {
    match c.get("Labels") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Resolves `user[:group]` (names or numbers) against the image's files.
pub fn resolve_user(spec: &str, lowers: &[String]) -> Result<(u32, u32, Vec<u32>), EngineError> {
    gcr_runtime::users::resolve_user(spec, lowers).map_err(|e| EngineError::Usage(e.0))
}

/// Parses an `--env-file`: `KEY=value` lines, `#` comments, bare `KEY` taken from our env.
pub fn read_env_file(path: &str) -> Result<Vec<String>, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EngineError::Usage(format!("cannot read env file {path}: {e}; check the path"))
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split('=').next().unwrap_or("");
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(EngineError::Usage(format!(
                "env file {path} line {}: '{line}' is not KEY=value",
                n + 1
            )));
        }
        if line.contains('=') {
            out.push(line.to_string());
        } else if let Ok(v) = std::env::var(key) {
            out.push(format!("{key}={v}"));
        }
    }
    Ok(out)
}

fn set_env(env: &mut Vec<String>, kv: String) {
    let key = kv.split('=').next().unwrap_or("").to_string();
    if let Some(slot) = env
        .iter_mut()
        .find(|e| e.split('=').next() == Some(key.as_str()))
    {
        *slot = kv;
    } else {
        env.push(kv);
    }
}

/// Computes argv, env, cwd and user for a container.
pub fn resolve(
    opts: &RunOptions,
    image_config: &Value,
    lowers: Vec<String>,
    hostname: String,
) -> Result<Resolved, EngineError> {
    let c = image_config.get("config").unwrap_or(&Value::Null);
    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), opts.cmd.clone()),
        Some(e) => (vec![e.clone()], opts.cmd.clone()),
        None => {
            let cmd = if opts.cmd.is_empty() {
                strings(c.get("Cmd"))
            } else {
                opts.cmd.clone()
            };
            (strings(c.get("Entrypoint")), cmd)
        }
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(EngineError::Usage(format!(
            "no command specified: image {} has no CMD or ENTRYPOINT; give a command after the image name",
            opts.image
        )));
    }
    let mut env = vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    for kv in strings(c.get("Env")) {
        set_env(&mut env, kv);
    }
    if opts.tty {
        set_env(&mut env, "TERM=xterm".into());
    }
    for f in &opts.env_files {
        for kv in read_env_file(f)? {
            set_env(&mut env, kv);
        }
    }
    for e in &opts.env {
        if e.starts_with('=') || e.is_empty() {
            return Err(EngineError::Usage(format!(
                "invalid environment variable '{e}': the name is empty; use -e NAME=VALUE"
            )));
        }
        if e.contains('=') {
            set_env(&mut env, e.clone());
        } else if let Ok(v) = std::env::var(e) {
            set_env(&mut env, format!("{e}={v}"));
        }
    }
    let cwd = opts
        .workdir
        .clone()
        .or_else(|| {
            c.get("WorkingDir")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(EngineError::Usage(format!(
            "the working directory '{cwd}' is invalid; it needs to be an absolute path"
        )));
    }
    let user = opts
        .user
        .clone()
        .or_else(|| c.get("User").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let (uid, gid, mut additional_gids) = resolve_user(&user, &lowers)?;
    // `--group-add`: numbers as they are, names from the image's /etc/group.
    let added = gcr_runtime::users::group_ids(&opts.group_add, &lowers)
        .map_err(|e| EngineError::Usage(format!("--group-add: {}", e.0)))?;
    for id in added {
        if !additional_gids.contains(&id) {
            additional_gids.push(id);
        }
    }
    // HOME from the user's passwd entry, else / (Docker's rule), unless the image or -e
    // set it.
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", gcr_runtime::users::home(&user, &lowers)));
    }
    let mut labels = config_labels(c);
    for l in &opts.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.retain(|(key, _)| key != k);
        labels.push((k.to_string(), v.to_string()));
    }
    let stop_signal = opts
        .stop_signal
        .clone()
        .or_else(|| {
            c.get("StopSignal")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "SIGTERM".into());
    let stop_signal = gcr_core::units::parse_signal(&stop_signal).map_err(|_| {
        EngineError::Usage(format!(
            "invalid stop signal '{stop_signal}'; use a name like SIGTERM or a number"
        ))
    })?;
    let caps_mask = gcr_runtime::caps::resolve(&opts.cap_add, &opts.cap_drop, opts.privileged)
        .map_err(|e| EngineError::Usage(e.to_string()))?;
    let mut no_new_privileges = false;
    let mut seccomp = !opts.privileged;
    for o in &opts.security_opt {
        match o.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                no_new_privileges = true
            }
            "no-new-privileges:false" | "no-new-privileges=false" => no_new_privileges = false,
            "seccomp=unconfined" | "seccomp:unconfined" => seccomp = false,
            other => {
                return Err(EngineError::Usage(format!(
                "unsupported --security-opt '{other}'; use no-new-privileges or seccomp=unconfined"
            )))
            }
        }
    }
    Ok(Resolved {
        args,
        env,
        cwd,
        uid,
        gid,
        additional_gids,
        hostname,
        caps_mask,
        no_new_privileges,
        seccomp,
        stop_signal,
        stop_timeout: opts.stop_timeout.unwrap_or(10),
        network: opts.network.clone().unwrap_or_else(|| "bridge".into()),
        labels,
        lowers,
        network_data: serde_json::Value::Null,
        volume_data: serde_json::Value::Null,
        health: resolve_health(opts, c.get("Healthcheck"))?,
    })
}

fn duration_ms(flag: &str, v: &Option<String>, default_ms: u64) -> Result<u64, EngineError> {
    match v {
        None => Ok(default_ms),
        Some(s) => gcr_core::units::parse_duration(s)
            .map(|d| d.as_millis() as u64)
            .map_err(|_| {
                EngineError::Usage(format!(
                    "invalid value '{s}' for {flag}: not a duration; use e.g. 30s or 500ms"
                ))
            }),
    }
}

/// The healthcheck from `--health-*` flags over the image's `Healthcheck` (Docker rules:
/// `NONE` disables; durations in the image are nanoseconds; defaults 30s/30s/3/0s).
fn resolve_health(
    opts: &RunOptions,
    image: Option<&Value>,
) -> Result<Option<crate::container::config::HealthConfig>, EngineError> {
    if opts.no_healthcheck {
        return Ok(None);
    }
    let img = image.filter(|v| v.is_object());
    let ns = |k: &str| {
        img.and_then(|v| v.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
            / 1_000_000
    };
    let or = |v: u64, d: u64| if v == 0 { d } else { v };
    let interval_ms = duration_ms(
        "--health-interval",
        &opts.health_interval,
        or(ns("Interval"), 30_000),
    )?;
    let timeout_ms = duration_ms(
        "--health-timeout",
        &opts.health_timeout,
        or(ns("Timeout"), 30_000),
    )?;
    let start_period_ms = duration_ms(
        "--health-start-period",
        &opts.health_start_period,
        ns("StartPeriod"),
    )?;
    let start_interval_ms = duration_ms(
        "--health-start-interval",
        &opts.health_start_interval,
        ns("StartInterval"),
    )?;
    if interval_ms == 0 || timeout_ms == 0 {
        return Err(EngineError::Usage(
            "--health-interval and --health-timeout must be greater than 0".into(),
        ));
    }
    let test: Vec<String> = match &opts.health_cmd {
        Some(c) => vec!["/bin/sh".into(), "-c".into(), c.clone()],
        None => {
            let t = strings(img.and_then(|v| v.get("Test")));
            match t.first().map(String::as_str) {
                Some("CMD") => t[1..].to_vec(),
                Some("CMD-SHELL") => {
                    vec!["/bin/sh".into(), "-c".into(), t[1..].join(" ")]
                }
                _ => return Ok(None),
            }
        }
    };
    if test.is_empty() {
        return Ok(None);
    }
    let image_retries = img
        .and_then(|v| v.get("Retries"))
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32;
    Ok(Some(crate::container::config::HealthConfig {
        test,
        interval_ms,
        timeout_ms,
        retries: opts
            .health_retries
            .unwrap_or(or(image_retries as u64, 3) as u32),
        start_period_ms,
        start_interval_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_from_image_files() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("group"),
            "root:x:0:\napp:x:1001:\nwheel:x:10:app\n",
        )
        .unwrap();
        let lowers = vec![dir.path().to_string_lossy().to_string()];
        assert_eq!(
            resolve_user("app", &lowers).unwrap(),
            (1000, 1001, vec![10])
        );
        assert_eq!(resolve_user("1000", &lowers).unwrap(), (1000, 1001, vec![]));
        assert_eq!(resolve_user("5:7", &lowers).unwrap(), (5, 7, vec![]));
        assert_eq!(resolve_user("app:wheel", &lowers).unwrap().1, 10);
        let err = resolve_user("nobody", &lowers).unwrap_err().to_string();
        assert!(err.contains("unable to find user nobody"), "{err}");
    }

    #[test]
    fn user_files_behind_symlinks_are_read_inside_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("passwd"), "evil:x:4242:4242::/:/bin/sh\n").unwrap();
        let img = dir.path().join("img");
        std::fs::create_dir_all(img.join("usr/etc")).unwrap();
        std::fs::write(img.join("usr/etc/passwd"), "app:x:1000:1001::/:/bin/sh\n").unwrap();
        let lowers = vec![img.to_string_lossy().to_string()];
        // /etc -> /usr/etc inside the image: followed there.
        std::os::unix::fs::symlink("/usr/etc", img.join("etc")).unwrap();
        assert_eq!(resolve_user("app", &lowers).unwrap(), (1000, 1001, vec![]));
        // /etc -> the host directory: resolved inside the image, where it does not exist.
        std::fs::remove_file(img.join("etc")).unwrap();
        std::os::unix::fs::symlink(&host, img.join("etc")).unwrap();
        assert!(resolve_user("evil", &lowers).is_err());
        assert_eq!(resolve_user("4242", &lowers).unwrap(), (4242, 0, vec![]));
    }

    #[test]
    fn entrypoint_and_cmd_merge_like_docker() {
        let img = serde_json::json!({"config": {"Entrypoint": ["/bin/app"], "Cmd": ["--port", "80"], "Env": ["A=1", "PATH=/x"], "WorkingDir": "/srv"}});
        let mut o = RunOptions {
            image: "app".into(),
            ..Default::default()
        };
        let r = resolve(&o, &img, vec![], "h".into()).unwrap();
        assert_eq!(r.args, ["/bin/app", "--port", "80"]);
        assert_eq!(r.cwd, "/srv");
        assert!(r.env.contains(&"PATH=/x".to_string()) && r.env.contains(&"A=1".to_string()));
        o.cmd = vec!["-v".into()];
        assert_eq!(
            resolve(&o, &img, vec![], "h".into()).unwrap().args,
            ["/bin/app", "-v"]
        );
        o.entrypoint = Some("/bin/sh".into());
        assert_eq!(
            resolve(&o, &img, vec![], "h".into()).unwrap().args,
            ["/bin/sh", "-v"]
        );
        o.entrypoint = Some(String::new());
        o.cmd = vec![];
        assert!(resolve(&o, &img, vec![], "h".into()).is_err());
    }
}
