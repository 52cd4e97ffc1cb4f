//! `top`: a running container's processes as the host's `ps` shows them, Docker's way —
//! `ps` run with the caller's options (default `-ef`, as dockerd) and only the rows of the
//! container's own processes (its cgroup's pids) kept. Without `ps` on the host and no
//! options asked for, gcr's own columns from /proc (UID, PID, PPID, CMD).

use std::process::{Command, Stdio};

use super::procfs;
use crate::{Engine, EngineError};

/// What `top` shows: the column titles and one row per process.
#[derive(Debug, Clone, PartialEq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

impl Engine {
    /// `gcr top CONTAINER [PS_OPTIONS]` and `GET /containers/{id}/top?ps_args=`.
    pub fn top(&self, key: &str, ps_args: Option<&str>) -> Result<Top, EngineError> {
        let (_, cg) = self.live_cgroup(key)?;
        let mut pids = cg.procs();
        pids.sort_unstable();
        let given: Vec<&str> = ps_args.unwrap_or("").split_whitespace().collect();
        let args = if given.is_empty() { vec!["-ef"] } else { given };
        let out = Command::new("ps")
            .args(&args)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match out {
            Ok(o) if o.status.success() => parse(&String::from_utf8_lossy(&o.stdout), &pids),
            Ok(o) => Err(EngineError::Usage(format!(
                "ps {} failed: {}; give top options ps accepts (e.g. aux, or -o pid,user,comm)",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            ))),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && ps_args.is_none_or(str::is_empty) =>
            {
                Ok(own(&pids))
            }
            Err(e) => Err(EngineError::Usage(format!(
                "top with ps options needs the host's ps (Debian's procps package): {e}"
            ))),
        }
    }
}

/// Keeps the rows of `ps`'s output whose PID is one of `pids` (sorted): every field up to
/// the last title, and the rest of the line (a command with its arguments) as the last.
fn parse(out: &str, pids: &[i32]) -> Result<Top, EngineError> {
    let mut lines = out.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| {
        EngineError::Usage(
            "ps shows no PID column with these options; give top options that show it (e.g. -o pid,comm)"
                .into(),
        )
    })?;
    let last = titles.len() - 1;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pids.binary_search(&pid).is_err() {
            continue;
        }
        let mut row: Vec<String> = fields.iter().take(last).map(|f| f.to_string()).collect();
        if fields.len() > last {
            row.push(fields[last..].join(" "));
        }
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

/// gcr's own columns, read from /proc: UID, PID, PPID, CMD.
fn own(pids: &[i32]) -> Top {
    Top {
        titles: ["UID", "PID", "PPID", "CMD"].map(str::to_string).to_vec(),
        processes: pids
            .iter()
            .map(|&p| {
                let uid = procfs::status_field(p, "Uid")
                    .and_then(|u| u.split_whitespace().next().map(str::to_string))
                    .unwrap_or_default();
                let ppid = procfs::status_field(p, "PPid").unwrap_or_default();
                vec![uid, p.to_string(), ppid, procfs::cmdline(p)]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS_EF: &str = "\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 02:00 ?        00:00:01 /sbin/init
root         412       1  0 02:01 ?        00:00:00 sleep 1000 --flag x
1000         413     412  0 02:01 pts/0    00:00:00 sh -c echo  two  spaces
";

    #[test]
    fn keeps_the_containers_rows_with_the_command_whole() {
        let t = parse(PS_EF, &[412, 413]).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(t.processes.len(), 2);
        assert_eq!(t.processes[0][1], "412");
        assert_eq!(t.processes[0][7], "sleep 1000 --flag x");
        assert_eq!(t.processes[1][0], "1000");
        assert_eq!(t.processes[1][7], "sh -c echo two spaces");
        assert!(parse(PS_EF, &[]).unwrap().processes.is_empty());
    }

    #[test]
    fn custom_columns_and_a_missing_pid_column() {
        let out = "  PID COMMAND\n  412 sleep\n    1 init\n";
        let t = parse(out, &[412]).unwrap();
        assert_eq!(t.titles, ["PID", "COMMAND"]);
        assert_eq!(t.processes, [vec!["412".to_string(), "sleep".to_string()]]);
        let err = parse("COMMAND\nsleep\n", &[412]).unwrap_err();
        assert!(err.to_string().contains("no PID column"), "{err}");
    }
}
