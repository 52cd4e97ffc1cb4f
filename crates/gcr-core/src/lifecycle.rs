//! The container lifecycle state machine and Docker's human wording for it.
//! [`next_state`] is the single rule book for which action is allowed in which state;
//! [`LifecycleError`] carries enough context (name, exit code, finish time) to say
//! e.g. `container web is not running (exited 0, 2 minutes ago)`. [`status_text`]
//! renders `gcr ps`'s STATUS column exactly like Docker (`Up 3 seconds`,
//! `Exited (0) 2 minutes ago`) using [`human_duration`], a port of `units.HumanDuration`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Paused,
    Stopping,
    Exited,
    Removing,
}

impl State {
    /// Lowercase name as stored and shown by `inspect` (`created`, `running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Stopping => "stopping",
            State::Exited => "exited",
            State::Removing => "removing",
        }
    }

    /// Parses the lowercase name (for reading records back).
    pub fn parse(s: &str) -> Option<State> {
        [
            State::Created,
            State::Running,
            State::Paused,
            State::Stopping,
            State::Exited,
            State::Removing,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// True while a process exists (running, paused or being stopped).
    pub fn is_alive(self) -> bool {
        matches!(self, State::Running | State::Paused | State::Stopping)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to a container: a user request or an observed fact (`Exit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Start,
    Pause,
    Unpause,
    /// Graceful stop requested (stop signal sent); the process has not exited yet.
    Stop,
    /// A signal that ends the process was sent (`kill`); like `Stop` but immediate.
    Kill,
    /// The container's main process exited (observed by the supervisor).
    Exit,
    /// Restart: the engine stops (if needed) and starts again; ends `Running`.
    Restart,
    Remove,
    /// `rm --force`: allowed in every state but `Removing`.
    ForceRemove,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Pause => "pause",
            Action::Unpause => "unpause",
            Action::Stop => "stop",
            Action::Kill => "kill",
            Action::Exit => "exit",
            Action::Restart => "restart",
            Action::Remove => "remove",
            Action::ForceRemove => "remove",
        }
    }
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotRunning,
    AlreadyRunning,
    AlreadyPaused,
    NotPaused,
    /// `rm` of a live container.
    StillRunning,
    /// The container is being stopped; wait for it.
    BeingStopped,
    /// The container is being removed.
    BeingRemoved,
}

/// An action refused in the current state. Fill in the optional context with
/// [`LifecycleError::context`] to get the detailed Docker-like message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleError {
    pub action: Action,
    pub state: State,
    pub refusal: Refusal,
    /// Container name (or short ID) for the message.
    pub container: Option<String>,
    pub exit_code: Option<i32>,
    /// When the process ended, Unix seconds.
    pub finished_at: Option<i64>,
    /// "Now" for the "2 minutes ago" part, Unix seconds.
    pub now: Option<i64>,
}

impl LifecycleError {
    /// Adds the name, last exit code and finish time (all optional) and the current time.
    pub fn context(
        mut self,
        container: &str,
        exit_code: Option<i32>,
        finished_at: Option<i64>,
        now: i64,
    ) -> LifecycleError {
        self.container = Some(container.to_string());
        self.exit_code = exit_code;
        self.finished_at = finished_at;
        self.now = Some(now);
        self
    }

    fn state_detail(&self) -> String {
        match self.state {
            State::Exited => {
                let mut s = "exited".to_string();
                if let Some(code) = self.exit_code {
                    s.push_str(&format!(" {code}"));
                }
                if let (Some(fin), Some(now)) = (self.finished_at, self.now) {
                    s.push_str(&format!(", {}", humanize_ago(now - fin)));
                }
                s
            }
            State::Removing => "being removed".to_string(),
            other => other.as_str().to_string(),
        }
    }
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.container {
            Some(n) => format!("container {n}"),
            None => "container".to_string(),
        };
        let arg = self.container.as_deref().unwrap_or("<container>");
        let detail = self.state_detail();
        match self.refusal {
            Refusal::NotRunning => write!(
                f,
                "cannot {} {name}: it is not running ({detail}); start it with `gcr start {arg}`",
                self.action.as_str()
            ),
            Refusal::AlreadyRunning => write!(f, "{name} is already running"),
            Refusal::AlreadyPaused => write!(f, "{name} is already paused"),
            Refusal::NotPaused => write!(f, "cannot unpause {name}: it is not paused ({detail})"),
            Refusal::StillRunning => write!(
                f,
                "cannot remove {name}: it is {detail}; stop it first with `gcr stop {arg}` or use `gcr rm --force {arg}`"
            ),
            Refusal::BeingStopped => write!(
                f,
                "cannot {} {name}: it is being stopped; wait for it to exit",
                self.action.as_str()
            ),
            Refusal::BeingRemoved => {
                write!(f, "cannot {} {name}: it is being removed", self.action.as_str())
            }
        }
    }
}

impl std::error::Error for LifecycleError {}

/// The state after `action` in `state`, or why it is refused.
///
/// | action       | allowed from                        | to        |
/// |--------------|-------------------------------------|-----------|
/// | Start        | Created, Exited                     | Running   |
/// | Pause        | Running                             | Paused    |
/// | Unpause      | Paused                              | Running   |
/// | Stop, Kill   | Running, Paused (Kill also Stopping)| Stopping  |
/// | Exit         | Running, Paused, Stopping           | Exited    |
/// | Restart      | Created, Running, Paused, Exited    | Running   |
/// | Remove       | Created, Exited                     | Removing  |
/// | ForceRemove  | all but Removing                    | Removing  |
///
/// Docker treats `start` of a running and `stop` of a stopped container as no-ops; the
/// engine may do the same on `Refusal::AlreadyRunning` / `Refusal::NotRunning`.
pub fn next_state(state: State, action: Action) -> Result<State, LifecycleError> {
    use Action as A;
    use State as S;
    let refuse = |refusal| {
        Err(LifecycleError {
            action,
            state,
            refusal,
            container: None,
            exit_code: None,
            finished_at: None,
            now: None,
        })
    };
    if state == S::Removing {
        return refuse(Refusal::BeingRemoved);
    }
    match (action, state) {
        (A::Start, S::Created | S::Exited) => Ok(S::Running),
        (A::Start, S::Running | S::Paused) => refuse(Refusal::AlreadyRunning),
        (A::Pause, S::Running) => Ok(S::Paused),
        (A::Pause, S::Paused) => refuse(Refusal::AlreadyPaused),
        (A::Unpause, S::Paused) => Ok(S::Running),
        (A::Unpause, S::Running | S::Created | S::Exited) => refuse(Refusal::NotPaused),
        (A::Stop | A::Kill, S::Running | S::Paused) => Ok(S::Stopping),
        (A::Kill, S::Stopping) => Ok(S::Stopping),
        (A::Exit, S::Running | S::Paused | S::Stopping) => Ok(S::Exited),
        (A::Restart, S::Created | S::Running | S::Paused | S::Exited) => Ok(S::Running),
        (A::Remove, S::Created | S::Exited) => Ok(S::Removing),
        (A::Remove, S::Running | S::Paused | S::Stopping) => refuse(Refusal::StillRunning),
        (A::ForceRemove, _) => Ok(S::Removing),
        (_, S::Stopping) => refuse(Refusal::BeingStopped),
        _ => refuse(Refusal::NotRunning),
    }
}

/// Docker's `units.HumanDuration` for a number of seconds (negative counts as 0):
/// `Less than a second`, `1 second`, `5 seconds`, `About a minute`, `3 minutes`,
/// `About an hour`, `5 hours`, `3 days`, `2 weeks`, `4 months`, `2 years`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let minutes = secs / 60;
    let hours = (secs + 1800) / 3600; // Go's d.Round(time.Hour)
    if secs < 1 {
        "Less than a second".to_string()
    } else if secs == 1 {
        "1 second".to_string()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".to_string()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", secs / 3600 / 24 / 365)
    }
}

/// `human_duration(secs) + " ago"`, e.g. `2 minutes ago`.
pub fn humanize_ago(secs: i64) -> String {
    format!("{} ago", human_duration(secs))
}

/// Docker's STATUS column. Times are Unix seconds; `started_at`/`finished_at` are `None`
/// when never started/finished.
///
/// `Created`, `Up 3 seconds`, `Up 5 minutes (Paused)`, `Up 2 hours (Stopping)`,
/// `Exited (0) 2 minutes ago`, `Removal In Progress`.
pub fn status_text(
    state: State,
    exit_code: Option<i32>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    now: i64,
) -> String {
    let up = || human_duration(now - started_at.unwrap_or(now));
    match state {
        State::Running => format!("Up {}", up()),
        State::Paused => format!("Up {} (Paused)", up()),
        State::Stopping => format!("Up {} (Stopping)", up()),
        State::Removing => "Removal In Progress".to_string(),
        State::Created => "Created".to_string(),
        State::Exited => match (started_at, finished_at) {
            (None, _) => "Created".to_string(),
            (Some(_), None) => format!("Exited ({})", exit_code.unwrap_or(0)),
            (Some(_), Some(fin)) => {
                format!(
                    "Exited ({}) {}",
                    exit_code.unwrap_or(0),
                    humanize_ago(now - fin)
                )
            }
        },
    }
}

/// Whether a stored container may go from `from` to `to` (the engine's writes: every
/// change of a row's state is checked here before it is written). Besides the moves of
/// [`next_state`] (with `Restart` as a start of an exited container), a row may stay in its
/// state (an event or an update without a move), and a start that failed before its process
/// ran goes back to `Created`. `Removing` is never stored: a removal deletes the row.
pub fn transition_allowed(from: State, to: State) -> bool {
    use State as S;
    if from == to {
        return from != S::Removing;
    }
    if from == S::Running && to == S::Created {
        return true;
    }
    to != S::Removing
        && [
            Action::Start,
            Action::Pause,
            Action::Unpause,
            Action::Stop,
            Action::Kill,
            Action::Exit,
        ]
        .into_iter()
        .any(|a| next_state(from, a) == Ok(to))
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
