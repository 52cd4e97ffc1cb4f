//! The lifecycle state machine: moves, refusals, wording.

use super::*;
use Action as A;
use State as S;

#[test]
fn allowed_transitions() {
    assert_eq!(next_state(S::Created, A::Start), Ok(S::Running));
    assert_eq!(next_state(S::Exited, A::Start), Ok(S::Running));
    assert_eq!(next_state(S::Running, A::Pause), Ok(S::Paused));
    assert_eq!(next_state(S::Paused, A::Unpause), Ok(S::Running));
    assert_eq!(next_state(S::Running, A::Stop), Ok(S::Stopping));
    assert_eq!(next_state(S::Paused, A::Kill), Ok(S::Stopping));
    assert_eq!(next_state(S::Stopping, A::Kill), Ok(S::Stopping));
    assert_eq!(next_state(S::Stopping, A::Exit), Ok(S::Exited));
    assert_eq!(next_state(S::Running, A::Exit), Ok(S::Exited));
    assert_eq!(next_state(S::Exited, A::Restart), Ok(S::Running));
    assert_eq!(next_state(S::Exited, A::Remove), Ok(S::Removing));
    assert_eq!(next_state(S::Running, A::ForceRemove), Ok(S::Removing));
}

#[test]
fn refusals() {
    let r = |s, a| next_state(s, a).unwrap_err().refusal;
    assert_eq!(r(S::Running, A::Start), Refusal::AlreadyRunning);
    assert_eq!(r(S::Exited, A::Stop), Refusal::NotRunning);
    assert_eq!(r(S::Created, A::Pause), Refusal::NotRunning);
    assert_eq!(r(S::Paused, A::Pause), Refusal::AlreadyPaused);
    assert_eq!(r(S::Running, A::Unpause), Refusal::NotPaused);
    assert_eq!(r(S::Running, A::Remove), Refusal::StillRunning);
    assert_eq!(r(S::Stopping, A::Start), Refusal::BeingStopped);
    assert_eq!(r(S::Removing, A::ForceRemove), Refusal::BeingRemoved);
    assert_eq!(r(S::Exited, A::Exit), Refusal::NotRunning);
}

#[test]
fn error_messages() {
    let e = next_state(S::Exited, A::Pause)
        .unwrap_err()
        .context("web", Some(0), Some(880), 1000);
    assert_eq!(
        e.to_string(),
        "cannot pause container web: it is not running (exited 0, 2 minutes ago); start it with `gcr start web`"
    );
    let e = next_state(S::Running, A::Remove)
        .unwrap_err()
        .context("web", None, None, 0);
    assert_eq!(
        e.to_string(),
        "cannot remove container web: it is running; stop it first with `gcr stop web` or use `gcr rm --force web`"
    );
    let e = next_state(S::Running, A::Start).unwrap_err();
    assert_eq!(e.to_string(), "container is already running");
    let e = next_state(S::Created, A::Unpause)
        .unwrap_err()
        .context("db", None, None, 0);
    assert_eq!(
        e.to_string(),
        "cannot unpause container db: it is not paused (created)"
    );
}

#[test]
fn human_durations() {
    let cases = [
        (0, "Less than a second"),
        (1, "1 second"),
        (3, "3 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (14 * 86400, "2 weeks"),
        (60 * 86400, "2 months"),
        (730 * 86400, "2 years"),
        (-5, "Less than a second"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(secs), want, "{secs}");
    }
    assert_eq!(humanize_ago(120), "2 minutes ago");
}

#[test]
fn status_texts() {
    assert_eq!(status_text(S::Created, None, None, None, 100), "Created");
    assert_eq!(
        status_text(S::Running, None, Some(97), None, 100),
        "Up 3 seconds"
    );
    assert_eq!(
        status_text(S::Running, None, Some(100), None, 100),
        "Up Less than a second"
    );
    assert_eq!(
        status_text(S::Paused, None, Some(0), None, 300),
        "Up 5 minutes (Paused)"
    );
    assert_eq!(
        status_text(S::Exited, Some(0), Some(0), Some(880), 1000),
        "Exited (0) 2 minutes ago"
    );
    assert_eq!(
        status_text(S::Exited, Some(137), Some(0), Some(0), 7200),
        "Exited (137) 2 hours ago"
    );
    assert_eq!(status_text(S::Exited, None, None, None, 0), "Created");
    assert_eq!(
        status_text(S::Removing, None, None, None, 0),
        "Removal In Progress"
    );
}

#[test]
fn state_names() {
    for s in [
        S::Created,
        S::Running,
        S::Paused,
        S::Stopping,
        S::Exited,
        S::Removing,
    ] {
        assert_eq!(State::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
    }
    assert_eq!(State::parse("dead"), None);
    assert!(S::Paused.is_alive() && !S::Exited.is_alive());
}

#[test]
fn transitions_follow_the_state_machine() {
    use State as S;
    assert!(transition_allowed(S::Created, S::Running));
    assert!(transition_allowed(S::Exited, S::Running));
    assert!(transition_allowed(S::Running, S::Stopping));
    assert!(transition_allowed(S::Stopping, S::Exited));
    assert!(transition_allowed(S::Paused, S::Exited));
    assert!(transition_allowed(S::Running, S::Created));
    assert!(transition_allowed(S::Exited, S::Exited));
    assert!(!transition_allowed(S::Created, S::Exited));
    assert!(!transition_allowed(S::Created, S::Paused));
    assert!(!transition_allowed(S::Exited, S::Stopping));
    assert!(!transition_allowed(S::Exited, S::Paused));
    assert!(!transition_allowed(S::Running, S::Removing));
    assert!(!transition_allowed(S::Removing, S::Removing));
}
