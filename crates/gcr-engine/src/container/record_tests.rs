//! Container records: lookup order and unreadable rows, against a real store.

use super::*;

fn row(id: &str, name: &str) -> Record {
    Record {
        id: id.into(),
        name: name.into(),
        image_id: "img".into(),
        image_ref: "img:1".into(),
        created_at: 0,
        state: State::Created,
        config: Box::default(),
        pid: None,
        started_at: None,
        finished_at: None,
        exit_code: None,
        oom_killed: false,
        restart_count: 0,
        extra: Extra::default(),
    }
}

fn store() -> (tempfile::TempDir, gcr_store::Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = gcr_store::Store::open(dir.path()).unwrap();
    (dir, s)
}

#[test]
fn lookup_is_full_id_then_name_then_unique_prefix() {
    let (_d, s) = store();
    let a = "a".repeat(64);
    let b = format!("ab{}", "0".repeat(62));
    // A container whose name is another's full id.
    insert(s.conn(), &row(&a, "first")).unwrap();
    insert(s.conn(), &row(&b, &a)).unwrap();
    assert_eq!(
        find(s.conn(), &a).unwrap().id,
        a,
        "a full id wins over a name"
    );
    assert_eq!(find(s.conn(), "first").unwrap().id, a);
    assert_eq!(find(s.conn(), "ab").unwrap().id, b, "a unique prefix");
    assert!(matches!(find(s.conn(), "a"), Err(EngineError::Usage(_))));
    assert!(matches!(find(s.conn(), "c"), Err(EngineError::NotFound(_))));
}

#[test]
fn an_unreadable_record_is_an_error_naming_it_never_a_default() {
    let (_d, s) = store();
    let id = "c".repeat(64);
    insert(s.conn(), &row(&id, "broken")).unwrap();
    s.conn()
        .execute(
            "UPDATE containers SET config = '{\"opts\": 5' WHERE id = ?1",
            [&id],
        )
        .unwrap();
    for res in [
        find(s.conn(), "broken").map(|_| ()),
        list(s.conn()).map(|_| ()),
    ] {
        let e = res.expect_err("a damaged record was read");
        let msg = e.to_string();
        assert!(msg.contains(&id) && msg.contains("gcr doctor"), "{msg}");
    }
}

fn events(s: &gcr_store::Store) -> i64 {
    s.conn()
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn illegal_moves_are_refused_naming_the_state_and_change_nothing() {
    let (_d, s) = store();
    let id = "d".repeat(64);
    let r = row(&id, "web");
    insert(s.conn(), &r).unwrap();
    let before = events(&s);
    let e = set_state(
        s.conn(),
        &r,
        None,
        State::Paused,
        "pause",
        &Update::default(),
    )
    .expect_err("created -> paused was allowed");
    assert!(e.to_string().contains("created"), "{e}");
    // A stale view of the row (it is not running) loses the compare-and-set.
    let stale = Record {
        state: State::Running,
        ..r.clone()
    };
    assert!(set_state(
        s.conn(),
        &stale,
        None,
        State::Stopping,
        "stop",
        &Update::default()
    )
    .is_err());
    assert_eq!(find(s.conn(), &id).unwrap().state, State::Created);
    assert_eq!(events(&s), before, "a refused move wrote an event");
    // A legal move writes the state and its event together.
    set_state(
        s.conn(),
        &r,
        None,
        State::Running,
        "start",
        &Update::default(),
    )
    .unwrap();
    assert_eq!(find(s.conn(), &id).unwrap().state, State::Running);
    assert_eq!(events(&s), before + 1);
}

#[test]
fn an_exit_is_recorded_once_and_never_overwritten() {
    let (_d, s) = store();
    let id = "e".repeat(64);
    let mut r = row(&id, "once");
    r.state = State::Running;
    insert(s.conn(), &r).unwrap();
    let exit = |code, maybe_recorded| {
        super::super::rows::store_exit(
            &s,
            &super::super::rows::Exit {
                row: r.clone(),
                code,
                oom: false,
                maybe_recorded,
            },
        )
    };
    exit(0, false).unwrap();
    // A late second record (a reconcile that could not see the code) is refused...
    assert!(matches!(exit(255, false), Err(EngineError::Conflict(_))));
    // ...and a retried one is a no-op.
    exit(255, true).unwrap();
    let cur = find(s.conn(), &id).unwrap();
    assert_eq!((cur.state, cur.exit_code), (State::Exited, Some(0)));
}

#[test]
fn an_exit_of_a_row_whose_start_was_lost_records_the_start_first() {
    let (_d, s) = store();
    let transitions = |id: &str| -> Vec<(Option<String>, Option<String>)> {
        s.conn()
            .prepare("SELECT from_state, to_state FROM events WHERE object = ?1 ORDER BY seq")
            .unwrap()
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let st = |a: Option<&str>, b: Option<&str>| (a.map(String::from), b.map(String::from));
    for rm in [false, true] {
        let id = if rm { "f" } else { "d" }.repeat(64);
        let mut r = row(&id, if rm { "gone" } else { "kept" });
        r.config.opts.rm = rm;
        // Stored `created`; the message that would have marked it running never came.
        insert(s.conn(), &r).unwrap();
        super::super::rows::store_exit(
            &s,
            &super::super::rows::Exit {
                row: r.clone(),
                code: 3,
                oom: false,
                maybe_recorded: false,
            },
        )
        .unwrap();
        let mut want = vec![
            st(None, Some("created")),
            st(Some("created"), Some("running")),
            st(Some("running"), Some("exited")),
        ];
        if rm {
            want.push(st(Some("exited"), None));
            assert!(matches!(find(s.conn(), &id), Err(EngineError::NotFound(_))));
        } else {
            let cur = find(s.conn(), &id).unwrap();
            assert_eq!((cur.state, cur.exit_code), (State::Exited, Some(3)));
        }
        assert_eq!(transitions(&id), want, "rm={rm}");
    }
}

#[test]
fn exits_carry_their_code_and_starts_record_their_grants() {
    let (_d, s) = store();
    s.conn()
        .execute(
            "INSERT INTO secrets(id, name, created_at, updated_at, labels, sealed, digest) \
             VALUES ('sid1', 'db', 0, 0, '{}', x'00', 'sha256:feed')",
            [],
        )
        .unwrap();
    let grants = |id: &str| -> Vec<serde_json::Value> {
        s.conn()
            .prepare("SELECT cause FROM events WHERE kind = 'grant' AND object = ?1 ORDER BY seq")
            .unwrap()
            .query_map([id], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|c| serde_json::from_str(&c.unwrap()).unwrap())
            .collect()
    };
    let exit_code = |id: &str| -> Option<i32> {
        s.conn()
            .query_row(
                "SELECT exit_code FROM events WHERE object = ?1 AND to_state = 'exited'",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    };
    let id = "e".repeat(64);
    let mut r = row(&id, "web");
    r.config.opts.secrets = vec!["db,target=pw".into()];
    r.config.resolved.env = vec!["PATH=/bin".into(), "PW=grant://db".into()];
    insert(s.conn(), &r).unwrap();
    assert!(grants(&id).is_empty(), "nothing is materialized at create");
    set_state(
        s.conn(),
        &r,
        None,
        State::Running,
        "start",
        &Update::default(),
    )
    .unwrap();
    let g = grants(&id);
    assert_eq!(g.len(), 2, "{g:?}");
    assert_eq!(g[0]["as"], "file:/run/secrets/pw");
    assert_eq!(g[1]["as"], "env:PW");
    for e in &g {
        assert_eq!(
            (&e["secret"], &e["secret_id"], &e["digest"]),
            (&"db".into(), &"sid1".into(), &"sha256:feed".into())
        );
    }
    // A pause and its end materialize nothing again.
    r.state = State::Running;
    set_state(
        s.conn(),
        &r,
        None,
        State::Paused,
        "pause",
        &Update::default(),
    )
    .unwrap();
    r.state = State::Paused;
    set_state(
        s.conn(),
        &r,
        None,
        State::Running,
        "unpause",
        &Update::default(),
    )
    .unwrap();
    assert_eq!(grants(&id).len(), 2);
    r.state = State::Running;
    let u = Update {
        exit_code: Some(7),
        ..Default::default()
    };
    set_state(s.conn(), &r, None, State::Exited, "die", &u).unwrap();
    assert_eq!(exit_code(&id), Some(7));
    // An --rm row's exit keeps its code with the event though the row goes.
    let gone = "9".repeat(64);
    let mut r = row(&gone, "gone");
    r.config.opts.rm = true;
    r.state = State::Running;
    insert(s.conn(), &r).unwrap();
    delete_exited(s.conn(), &r, "die", 5).unwrap();
    assert_eq!(exit_code(&gone), Some(5));
    assert!(grants(&gone).is_empty());
}
