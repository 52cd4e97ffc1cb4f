//! Races on one container (issue 13): two concurrent `run -d --name same`, two concurrent
//! `start` of one container, two concurrent `rm -f` of one container. Exactly one wins
//! each time, the loser gets a clear error, and nothing is left behind.

mod common;

use common::{need_root, stderr, Env, IMAGE};
use std::process::Output;

const TRIALS: usize = 50;

fn spawned(env: &Env, args: &[&str]) -> std::process::Child {
    env.cmd(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
}

fn pair(env: &Env, args: &[&str]) -> (Output, Output) {
    let a = spawned(env, args);
    let b = spawned(env, args);
    (a.wait_with_output().unwrap(), b.wait_with_output().unwrap())
}

/// The number of `start` events of container `name`.
fn starts(env: &Env, name: &str) -> usize {
    env.ok(&["events", "--since", "10m", "--until", "0s"])
        .lines()
        .filter(|l| {
            l.contains(&format!("name={name}")) && l.split_whitespace().nth(2) == Some("start")
        })
        .count()
}

fn containers_left(env: &Env) -> usize {
    std::fs::read_dir(env.root.path().join("containers"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn two_runs_with_one_name_one_wins() {
    if !need_root("two_runs_with_one_name_one_wins") {
        return;
    }
    let env = Env::new();
    for i in 0..TRIALS {
        let name = format!("same{i}");
        let (a, b) = pair(&env, &["run", "-d", "--name", &name, IMAGE, "sleep", "100"]);
        let won = [&a, &b].iter().filter(|o| o.status.success()).count();
        assert_eq!(
            won,
            1,
            "trial {i}: {} won\n{}\n{}",
            won,
            stderr(&a),
            stderr(&b)
        );
        let loser = if a.status.success() { &b } else { &a };
        assert_eq!(
            loser.status.code(),
            Some(125),
            "trial {i}: {}",
            stderr(loser)
        );
        assert!(
            stderr(loser).contains(&name),
            "the loser's error names the container: {}",
            stderr(loser)
        );
        let ps = env.ok(&["ps", "-a", "--format", "json"]);
        assert_eq!(
            ps.matches(&format!("\"{name}\"")).count(),
            1,
            "trial {i}: {ps}"
        );
        env.ok(&["rm", "-f", &name]);
    }
    assert_eq!(
        containers_left(&env),
        0,
        "container directories left behind"
    );
}

#[test]
fn two_starts_of_one_container_run_it_once() {
    if !need_root("two_starts_of_one_container_run_it_once") {
        return;
    }
    let env = Env::new();
    for i in 0..TRIALS {
        let name = format!("c{i}");
        env.ok(&["create", "--name", &name, IMAGE, "sleep", "100"]);
        let (a, b) = pair(&env, &["start", &name]);
        let errs: Vec<&Output> = [&a, &b]
            .into_iter()
            .filter(|o| !o.status.success())
            .collect();
        for e in &errs {
            assert!(
                stderr(e).contains(&name) && stderr(e).contains("being started"),
                "trial {i}: unclear error: {}",
                stderr(e)
            );
        }
        assert_eq!(starts(&env, &name), 1, "trial {i}: started twice");
        let top = env.ok(&["top", &name]);
        assert_eq!(
            top.lines().filter(|l| l.contains("sleep 100")).count(),
            1,
            "trial {i}: {top}"
        );
        env.ok(&["rm", "-f", &name]);
    }
    assert_eq!(
        containers_left(&env),
        0,
        "container directories left behind"
    );
}

#[test]
fn two_forced_removals_one_removes() {
    if !need_root("two_forced_removals_one_removes") {
        return;
    }
    let env = Env::new();
    for i in 0..TRIALS {
        let name = format!("r{i}");
        env.ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "100"]);
        let (a, b) = pair(&env, &["rm", "-f", &name]);
        let won = [&a, &b].iter().filter(|o| o.status.success()).count();
        assert_eq!(won, 1, "trial {i}: {} {}", stderr(&a), stderr(&b));
        for o in [&a, &b].into_iter().filter(|o| !o.status.success()) {
            assert!(
                stderr(o).contains("no such container"),
                "trial {i}: unclear error: {}",
                stderr(o)
            );
        }
        let ps = env.ok(&["ps", "-aq"]);
        assert!(ps.trim().is_empty(), "trial {i}: left {ps}");
    }
    assert!(
        common::eventually(5, || containers_left(&env) == 0),
        "container directories left behind"
    );
}
