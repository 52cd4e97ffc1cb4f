//! The runtime-spec conformance table: one row per Linux config field (or field value), each
//! run through gcr-runc and runc 1.1 on the same bundle and checked for the same (exit code,
//! output) and for the expected output. Rows runc 1.1 cannot run (it lacks the field) run
//! gcr-runc alone and say why; refused rows check gcr-runc's error names the field.
//! The rows live in `conformance_rows.rs` and `conformance_resources.rs`; this file runs them.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{common, Bundle};

/// An edit of config.json (given the bundle directory).
pub(super) type Edit = Box<dyn Fn(&mut Value, &Path)>;

/// What a row runs to see the field's effect.
pub(super) enum Probe {
    /// `sh -c SCRIPT` as the container's process; its stdout.
    Sh(String),
    /// A `sleep` container with its own cgroupsPath; these cgroup files read from the host
    /// (v1: `(controller, file)`; on a pure v2 host the row says so and is skipped).
    Host(Vec<(&'static str, &'static str)>),
}

/// What the row must give.
pub(super) enum Expect {
    /// Exit code 0 and exactly this output.
    Out(String),
    /// A non-zero exit code (both runtimes the same).
    Fails,
}

/// Who runs the row.
pub(super) enum Mode {
    /// Both, same (exit code, output).
    Both,
    /// gcr-runc alone: runc 1.1 lacks the field (the reason).
    GcrOnly(&'static str),
    /// gcr-runc refuses the field: exit 1 and an error naming it.
    Refused(&'static str),
}

pub(super) struct Row {
    pub field: &'static str,
    pub edit: Edit,
    pub probe: Probe,
    pub expect: Expect,
    pub mode: Mode,
}

pub(super) fn edit(f: impl Fn(&mut Value, &Path) + 'static) -> Edit {
    Box::new(f)
}

/// Mountinfo line fields of the host's cgroup mounts: (mount point, fstype, super options).
fn cgroup_mounts() -> Vec<(PathBuf, String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mut p = post.split(' ');
            let (fstype, _src, opts) = (p.next()?, p.next()?, p.next()?);
            let mp = pre.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| (PathBuf::from(mp), fstype.to_string(), opts.to_string()))
        })
        .collect()
}

/// Where the v1 hierarchy of `ctrl` is mounted, if it is.
pub(super) fn v1_mount(ctrl: &str) -> Option<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .find(|(_, t, o)| t == "cgroup" && o.split(',').any(|c| c == ctrl))
        .map(|(m, _, _)| m)
}

/// True when the host has v1 controllers (v1 or hybrid).
pub(super) fn host_v1() -> bool {
    v1_mount("memory").is_some()
}

/// The cgroup parent every Host row's groups live under; removed (all hierarchies) on drop.
struct CgParent(String);

impl Drop for CgParent {
    fn drop(&mut self) {
        for (m, _, _) in cgroup_mounts() {
            let _ = std::fs::remove_dir(m.join(&self.0));
        }
    }
}

fn host_probe(
    b: &mut Bundle,
    parent: &str,
    name: &str,
    files: &[(&str, &str)],
    which: &[&'static str],
) -> Vec<(i32, String)> {
    let bundle = b.path().to_str().unwrap().to_string();
    which
        .iter()
        .map(|w| {
            let id = format!("{name}-{w}");
            let group = format!("{parent}/{id}");
            b.edit(|c| {
                c["process"]["args"] = json!(["sleep", "30"]);
                c["linux"]["cgroupsPath"] = json!(format!("/{group}"));
            });
            b.ids.push(format!("{w}:{id}"));
            if !b.detached(w, &["run", "-d", "--bundle", &bundle, &id]) {
                return (1, String::new());
            }
            let mut out = Vec::new();
            for (ctrl, file) in files {
                let p = v1_mount(ctrl)
                    .map(|m| m.join(&group).join(file))
                    .unwrap_or_default();
                let v = std::fs::read_to_string(&p)
                    .unwrap_or_else(|e| format!("({}: {e})", p.display()));
                out.push(format!("{file}: {}", v.trim()));
            }
            let _ = b.tool(w, &["kill", &id, "KILL"]);
            let _ = b.tool(w, &["delete", "--force", &id]);
            (0, out.join("\n"))
        })
        .collect()
}

fn check(expect: &Expect, got: &(i32, String)) -> Result<(), String> {
    match expect {
        Expect::Out(want) if got.0 == 0 && got.1 == *want => Ok(()),
        Expect::Fails if got.0 != 0 => Ok(()),
        Expect::Out(want) => Err(format!("want exit 0 and {want:?}, got {got:?}")),
        Expect::Fails => Err(format!("want a failure, got {got:?}")),
    }
}

#[test]
fn conformance_table() {
    if !common::need_root("conformance_table") {
        return;
    }
    let parent = CgParent(format!("gcr-conf-{}", std::process::id()));
    let mut b = Bundle::new();
    let ctx = super::conformance_rows::Ctx::new(&mut b);
    let rows = super::conformance_rows::rows(&ctx);
    let orig = std::fs::read(b.path().join("config.json")).unwrap();
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        std::fs::write(b.path().join("config.json"), &orig).unwrap();
        b.edit(|c| (row.edit)(c, &ctx.dir));
        let name = format!("c{i}");
        let which: &[&'static str] = match row.mode {
            Mode::Both => &["gcr", "runc"],
            _ => &["gcr"],
        };
        let got: Vec<(i32, String)> = match &row.probe {
            Probe::Host(_) if !host_v1() => {
                eprintln!(
                    "{}: skipped, v1 cgroup files and this host is pure v2",
                    row.field
                );
                continue;
            }
            Probe::Host(files) => host_probe(&mut b, &parent.0, &name, files, which),
            Probe::Sh(script) => {
                b.edit(|c| c["process"]["args"] = json!(["sh", "-c", script]));
                which
                    .iter()
                    .map(|w| b.run_one(w, &format!("{name}-{w}")))
                    .collect()
            }
        };
        let status = match row.mode {
            Mode::Both if got[0] != got[1] => {
                failures.push(format!(
                    "{}: gcr-runc {:?} vs runc {:?}",
                    row.field, got[0], got[1]
                ));
                "DIFFERS from runc".to_string()
            }
            Mode::Both => "matches runc".to_string(),
            Mode::GcrOnly(why) => format!("gcr only ({why})"),
            Mode::Refused(field) => {
                let log = std::fs::read_to_string(b.path().join("gcr.log")).unwrap_or_default();
                let named = log
                    .lines()
                    .last()
                    .is_some_and(|l| l.contains(field) && l.contains("not supported"));
                if got[0].0 != 1 || !named {
                    failures.push(format!(
                        "{}: want a refusal naming {field}, got {:?}, log {log}",
                        row.field, got[0]
                    ));
                }
                "refused".to_string()
            }
        };
        if let Err(e) = check(&row.expect, &got[0]) {
            failures.push(format!("{}: {e}", row.field));
        }
        table.push(format!("| `{}` | {status} |", row.field));
    }
    eprintln!("| field | status |\n|---|---|\n{}", table.join("\n"));
    drop(ctx);
    drop(b);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `exec` into a container with its own time namespace runs with the container's clocks
/// (runc 1.1 has no time namespaces: gcr-runc alone).
#[test]
fn exec_joins_the_time_namespace() {
    if !common::need_root("exec_joins_the_time_namespace") {
        return;
    }
    let mut b = Bundle::new();
    b.edit(|c| {
        c["process"]["args"] = json!(["sleep", "30"]);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000}});
    });
    let bundle = b.path().to_str().unwrap().to_string();
    b.ids.push("gcr:tns".into());
    assert!(b.detached("gcr", &["run", "-d", "--bundle", &bundle, "tns"]));
    let out = b.tool("gcr", &["exec", "tns", "cat", "/proc/uptime"]);
    assert!(
        out.status.success(),
        "exec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let up: f64 = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("uptime");
    assert!(up >= 864000.0, "exec saw uptime {up}");
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        host < 864000.0 || up >= host + 863000.0,
        "{up} vs host {host}"
    );
}
