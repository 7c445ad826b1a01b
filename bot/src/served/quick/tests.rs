//! The quick path: which command lines it takes, and its answers from a real swarm's socket beside the usual path's.

use std::path::PathBuf;

use super::{ask, copy_answer, plan, Asked, Plan};
use crate::served::tests::Fixture;

fn plan_of(line: &[&str], env: &[(&str, &str)]) -> Option<Plan> {
    let args: Vec<&[u8]> = std::iter::once("dreamos")
        .chain(line.iter().copied())
        .map(str::as_bytes)
        .collect();
    plan(&args, |name| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_bytes())
    })
}

fn words(line: &[&str]) -> Vec<String> {
    line.iter().map(|w| w.to_string()).collect()
}

#[test]
fn a_tools_line_is_planned_with_its_data_directory() {
    let socket = |dir: &str| PathBuf::from(dir).join("tools.sock");
    assert_eq!(
        plan_of(&["search", "Foo", "--limit", "3"], &[]),
        Some(Plan {
            socket: socket("data"),
            words: words(&["search", "Foo", "--limit", "3"]),
        })
    );
    // --data-dir before or after the tool, in either form, is taken out; the environment's is the default.
    for line in [
        &["--data-dir", "/d", "repos"][..],
        &["--data-dir=/d", "repos"],
        &["repos", "--data-dir", "/d"],
        &["repos", "--data-dir=/d"],
    ] {
        assert_eq!(
            plan_of(line, &[("DREAMOS_DATA_DIR", "/env")]),
            Some(Plan {
                socket: socket("/d"),
                words: words(&["repos"]),
            }),
            "{line:?}"
        );
    }
    assert_eq!(
        plan_of(&["repos"], &[("DREAMOS_DATA_DIR", "/env")]).map(|p| p.socket),
        Some(socket("/env"))
    );
    assert_eq!(
        plan_of(&["repos"], &[("DREAMOS_DATA_DIR", "")]).map(|p| p.socket),
        Some(socket("data"))
    );
    // After `--` every word is the tool's, options or not.
    assert_eq!(
        plan_of(&["search", "--", "--data-dir", "--config"], &[]),
        Some(Plan {
            socket: socket("data"),
            words: words(&["search", "--", "--data-dir", "--config"]),
        })
    );
    for tools in ["", "auto", "swarm"] {
        assert!(
            plan_of(&["repos"], &[("DREAMOS_TOOLS", tools)]).is_some(),
            "{tools}"
        );
    }
}

#[test]
fn other_lines_are_left_to_the_usual_path() {
    for (line, env) in [
        (&["run"][..], &[][..]),
        (&["index", "."], &[]),
        (&[], &[]),
        (&["--help"], &[]),
        (&["-V", "search", "x"], &[]),
        (&["--data-dir"], &[]),
        (&["repos", "--data-dir"], &[]),
        (&["--data-dir", "/a", "repos", "--data-dir", "/b"], &[]),
        (&["repos", "--data-dir", "--json"], &[]),
        (&["--config", "c.toml", "repos"], &[]),
        (&["search", "x", "--config=c.toml"], &[]),
        (&["Search", "x"], &[]),
        (&["repos"], &[("DREAMOS_TOOLS", "local")]),
        (&["repos"], &[("DREAMOS_TOOLS", "sometimes")]),
    ] {
        assert_eq!(plan_of(line, env), None, "{line:?} {env:?}");
    }
    let args: [&[u8]; 3] = [b"dreamos", b"search", b"caf\xe9"];
    assert_eq!(plan(&args, |_| None), None, "not UTF-8");
}

/// Frames as the swarm writes them.
fn frames(list: &[(u8, &[u8])]) -> Vec<u8> {
    let mut all = Vec::new();
    for (kind, bytes) in list {
        all.push(*kind);
        all.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        all.extend_from_slice(bytes);
    }
    all
}

fn copied(answer: &[u8]) -> (Asked, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let asked = copy_answer(answer, &mut out, &mut err);
    (
        asked,
        String::from_utf8(out).expect("utf-8"),
        String::from_utf8(err).expect("utf-8"),
    )
}

#[test]
fn an_answer_is_copied_and_a_broken_one_reported_once_printing_began() {
    assert_eq!(
        copied(&frames(&[
            (b'o', b"a\n"),
            (b'e', b"note\n"),
            (b'o', b"b\n"),
            (b'x', &[3])
        ])),
        (
            Asked::Answered(3),
            "a\nb\n".to_string(),
            "note\n".to_string()
        )
    );
    // Nothing printed yet: the usual path asks again, or answers itself.
    for answer in [
        frames(&[(b'r', b"busy")]),
        Vec::new(),
        frames(&[(b'?', b"")]),
        vec![b'o', 9, 0],
    ] {
        assert_eq!(copied(&answer), (Asked::No, String::new(), String::new()));
    }
    let (asked, out, err) = copied(&frames(&[(b'o', b"half")]));
    assert_eq!((asked, out.as_str()), (Asked::Answered(1), "half"));
    assert_eq!(
        err,
        "error: the swarm stopped while answering; run the command again\n"
    );
    let (asked, _, err) = copied(&frames(&[(b'o', b"a"), (b'r', b"late")]));
    assert_eq!(asked, Asked::Answered(1));
    assert!(err.contains("unknown kind 0x72"), "{err}");
}

/// A writer whose reader went away.
struct Closed;

impl std::io::Write for Closed {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_reader_that_went_away_ends_the_tool_quietly() {
    let mut err = Vec::new();
    let answer = frames(&[(b'o', b"a\n"), (b'x', &[0])]);
    assert_eq!(
        copy_answer(&answer[..], Closed, &mut err),
        Asked::Answered(0)
    );
    assert!(err.is_empty());
}

#[test]
fn the_swarm_answers_a_planned_line_and_no_swarm_is_no_answer() {
    let fixture = Fixture::new();
    let dir = fixture.dir.path().to_str().expect("utf-8");
    let asked = |line: &[&str]| {
        let plan = plan_of(line, &[]).expect("planned");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let asked = ask(&plan, &mut out, &mut err);
        (
            asked,
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(err).expect("utf-8"),
        )
    };
    let (code, out, err) = asked(&["search", "tide_table", "--data-dir", dir]);
    assert_eq!(code, Asked::Answered(0), "{err}");
    assert!(out.contains("src/lib.rs:1"), "{out}");
    let (code, out, err) = asked(&["--data-dir", dir, "search", "zz_nothing_like_it"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (Asked::Answered(0), "", "no matches\n")
    );
    // The swarm refuses what the tool must read itself; nothing is printed.
    assert_eq!(
        asked(&["--data-dir", dir, "search"]),
        (Asked::No, String::new(), String::new())
    );
    assert_eq!(
        asked(&["--data-dir", dir, "search", "x", "--bogus"]),
        (Asked::No, String::new(), String::new())
    );
    let elsewhere = fixture.dir.path().join("elsewhere");
    assert_eq!(
        asked(&["repos", "--data-dir", elsewhere.to_str().expect("utf-8")]),
        (Asked::No, String::new(), String::new())
    );
}
