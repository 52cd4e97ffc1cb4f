use super::*;

fn p(s: &str) -> Dockerfile {
    parse("Dockerfile", s).unwrap()
}

fn e(s: &str) -> String {
    parse("Dockerfile", s).unwrap_err().to_string()
}

#[test]
fn stages_args_and_continuations() {
    let df = p("# syntax=docker/dockerfile:1\nARG V=1\nFROM base:${V} AS Build\nRUN echo a \\\n  # inner comment\n  b\n\nFROM scratch\nCOPY --from=build /x /y\n");
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.meta_args.len(), 1);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[0].base, "base:${V}");
    match &df.stages[0].instructions[0].kind {
        Kind::Run(r) => assert_eq!(r.cmd, CmdLine::Shell("echo a   b".into())),
        k => panic!("{k:?}"),
    }
    assert_eq!(df.stages[0].instructions[0].loc, Loc { line: 4, col: 1 });
    match &df.stages[1].instructions[0].kind {
        Kind::Copy(c) => {
            assert_eq!(c.from.as_deref(), Some("build"));
            assert_eq!(c.srcs, vec!["/x"]);
            assert_eq!(c.dest, "/y");
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn escape_directive() {
    let df = p("# escape=`\nFROM a\nRUN echo `\n x\n");
    assert_eq!(df.escape, '`');
    match &df.stages[0].instructions[0].kind {
        Kind::Run(r) => assert_eq!(r.cmd, CmdLine::Shell("echo  x".into())),
        k => panic!("{k:?}"),
    }
}

#[test]
fn forms_and_pairs() {
    let df = p("FROM a\nCMD [\"a\", \"b c\"]\nENTRYPOINT echo hi\nENV A=1 B=\"x y\"\nENV LEGACY some value\nLABEL \"k k\"=v\nARG X Y=2\nSHELL [\"/bin/bash\", \"-c\"]\nHEALTHCHECK --interval=5s CMD true\nHEALTHCHECK NONE\nONBUILD RUN echo on\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nEXPOSE 80 53/udp\n");
    let k: Vec<&Kind> = df.stages[0].instructions.iter().map(|i| &i.kind).collect();
    assert_eq!(
        *k[0],
        Kind::Cmd(CmdLine::Exec(vec!["a".into(), "b c".into()]))
    );
    assert_eq!(*k[1], Kind::Entrypoint(CmdLine::Shell("echo hi".into())));
    assert_eq!(
        *k[2],
        Kind::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"x y\"".into())
        ])
    );
    assert_eq!(
        *k[3],
        Kind::Env(vec![("LEGACY".into(), "some value".into())])
    );
    assert_eq!(*k[4], Kind::Label(vec![("\"k k\"".into(), "v".into())]));
    match k[5] {
        Kind::Arg(a) => {
            assert_eq!(a[0].name, "X");
            assert_eq!(a[0].default, None);
            assert_eq!(a[1].default.as_deref(), Some("2"));
        }
        k => panic!("{k:?}"),
    }
    match k[7] {
        Kind::Healthcheck(h) => {
            assert_eq!(h.interval.as_deref(), Some("5s"));
            assert_eq!(h.cmd, Some(CmdLine::Shell("true".into())));
        }
        k => panic!("{k:?}"),
    }
    assert!(matches!(
        k[8],
        Kind::Healthcheck(HealthInstr { cmd: None, .. })
    ));
    match k[9] {
        Kind::OnBuild(t, inner) => {
            assert_eq!(t, "RUN echo on");
            assert!(matches!(**inner, Kind::Run(_)));
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(*k[10], Kind::Volume(vec!["/a".into(), "/b".into()], true));
    assert_eq!(*k[11], Kind::Volume(vec!["/c".into(), "/d".into()], false));
}

#[test]
fn heredocs() {
    let df = p("FROM a\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<-\"A\" <<B /dir/\n\tliteral $X\n\tA\nb $X\nB\nRUN echo after\n");
    let ins = &df.stages[0].instructions;
    assert_eq!(ins.len(), 3);
    match &ins[0].kind {
        Kind::Run(r) => {
            assert_eq!(r.heredocs.len(), 1);
            assert_eq!(r.heredocs[0].content, "echo one\necho two\n");
        }
        k => panic!("{k:?}"),
    }
    match &ins[1].kind {
        Kind::Copy(c) => {
            assert_eq!(c.srcs, vec!["<<-\"A\"", "<<B"]);
            assert_eq!(c.heredocs[0].name, "A");
            assert!(!c.heredocs[0].expand);
            assert_eq!(c.heredocs[0].content, "literal $X\n");
            assert!(c.heredocs[1].expand);
            assert_eq!(c.heredocs[1].content, "b $X\n");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(ins[2].loc.line, 11);
    assert!(e("FROM a\nRUN <<EOF\nno end\n").contains("never closed"));
    // Shifts and quoted << are not heredocs.
    let df = p("FROM a\nRUN echo $((1<<2)) \"<<X\"\nRUN true\n");
    assert_eq!(df.stages[0].instructions.len(), 2);
}

#[test]
fn errors_name_line_and_column() {
    assert_eq!(
        e("FROM a\n  RUNN x\n"),
        "Dockerfile:2:3: unknown instruction: RUNN (did you mean RUN?)"
    );
    assert!(e("FROM a\nCOPY --form=x a b\n").starts_with("Dockerfile:2:1: unknown flag: --form"));
    assert!(e("RUN x\nFROM a\n").contains("only ARG may come before FROM"));
    assert!(e("# comment\n").contains("no FROM"));
    assert!(e("FROM a AS x\nFROM b AS X\n").contains("duplicate stage name"));
    assert!(e("FROM a\nCOPY onlyone\n").contains("at least one source"));
    assert!(e("FROM a\nSHELL /bin/sh\n").contains("JSON array"));
    assert!(e("FROM a\nENV K\n").contains("needs a value"));
    assert!(e("FROM a\nARG a-b\n").contains("invalid ARG name"));
    assert!(e("FROM a\nCOPY --chown=1 --chown=2 a b\n").contains("twice"));
    assert!(e("# escape=x\nFROM a\n").contains("invalid escape"));
    assert!(e("FROM a\nONBUILD FROM b\n").contains("not allowed"));
    assert!(e("FROM a\nENV --x=1\n").contains("unknown flag"));
}

#[test]
fn big_inputs_do_not_panic() {
    let mut s = String::from("FROM a\n");
    for i in 0..10_000 {
        s.push_str(&format!("ENV V{i}={i}\n"));
    }
    assert_eq!(p(&s).stages[0].instructions.len(), 10_000);
    let huge = format!("FROM a\nRUN <<EOF\n{}EOF\n", "x\n".repeat(1_000_000));
    assert_eq!(p(&huge).stages[0].instructions.len(), 1);
    for s in [
        "",
        "\\",
        "FROM",
        "FROM a\nRUN [",
        "FROM a\nCOPY \"a b",
        "FROM a\n\\\n\\\n",
    ] {
        let _ = parse("Dockerfile", s);
    }
}
