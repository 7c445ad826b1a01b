//! Hostile input through the binary: lines that are not UTF-8 or are huge, control characters bound for the
//! terminal, controls on stopped agents, names that break addressing, the command-line tools' ranges, and the
//! line rules that make "one answer per line" exact.

use std::{io::Write, process::Stdio};

use dreamos_tests::{dreamos_command, run_dreamos, Console};
use serde_json::Value;

/// Pipes raw bytes into `dreamos run --json` and returns its stdout lines parsed, and its stderr.
fn session(dir: &std::path::Path, input: &[u8], env: &[(&str, &str)]) -> (Vec<Value>, String) {
    let data = dir.join("data");
    let mut child = dreamos_command(
        &["run", "--json", "--data-dir", data.to_str().expect("utf-8")],
        env,
    )
    .spawn()
    .expect("start dreamos");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write");
    drop(stdin);
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "exit {}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (lines, stderr)
}

fn answers(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l.get("ok").is_some()).collect()
}

#[test]
fn a_line_that_is_not_utf8_or_is_huge_gets_an_error_and_the_session_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut input = b"/status\n/send agent-1 \xff\xfe bad\n".to_vec();
    input.extend(b"/send agent-1 ");
    input.extend(std::iter::repeat_n(b'x', 2 << 20));
    input.extend(b"\n/send agent-1 after --wait\n");
    let (lines, stderr) = session(dir.path(), &input, &[]);
    let got = answers(&lines);
    assert_eq!(got.len(), 4, "one answer per line: {lines:?}");
    assert_eq!(got[0]["ok"], true);
    assert_eq!(got[1]["error"]["kind"], "invalid_input");
    assert!(got[1]["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("not valid UTF-8"));
    assert_eq!(got[2]["error"]["kind"], "invalid_input");
    assert!(got[2]["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("max_line_bytes"));
    assert!(
        got[2].to_string().len() < 1000,
        "the error does not echo the line"
    );
    assert_eq!(got[3]["data"]["reply"]["body"]["text"], "pong: after");
    // Logs on a pipe carry no colours.
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

#[test]
fn every_line_gets_one_answer_except_comments_and_quit_is_answered() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = "\n   \n\u{3000}\u{2028}\n# a comment\n/status\n/send agent-1 hi --wait --wait\n/quit\n/status\n";
    let (lines, _) = session(dir.path(), input.as_bytes(), &[]);
    let got = answers(&lines);
    let commands: Vec<&str> = got
        .iter()
        .map(|a| a["command"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(commands, ["status", "send", "quit"], "{lines:?}");
    assert!(got[1]["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("--wait is given twice"));
    assert_eq!(got[2]["data"]["bye"], true);
}

#[test]
fn a_waited_reply_is_shown_once_in_the_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (lines, _) = session(dir.path(), b"/send agent-1 once --wait\n", &[]);
    let replies = lines
        .iter()
        .filter(|l| l["event"] == "reply" && l["data"]["body"]["text"] == "pong: once")
        .count();
    assert_eq!(replies, 0, "not also as an event: {lines:?}");
    assert_eq!(
        answers(&lines)[0]["data"]["reply"]["body"]["text"],
        "pong: once"
    );
}

#[test]
fn nothing_reaches_the_terminal_raw_in_text_mode_and_json_stays_exact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let line = "/send agent-1 \"\u{1b}[31mRED\u{1b}]0;TITLE\u{7}\" --wait\n";
    let (status, stdout, _) = run_dreamos(
        &["run", "--data-dir", data.to_str().expect("utf-8")],
        &[],
        line,
    );
    assert!(status.success());
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
    assert!(
        stdout.contains("\\x1b[31mRED\\x1b]0;TITLE\\x07"),
        "{stdout}"
    );
    let (lines, _) = session(dir.path(), line.as_bytes(), &[]);
    assert_eq!(
        answers(&lines)[0]["data"]["reply"]["body"]["text"],
        "pong: \u{1b}[31mRED\u{1b}]0;TITLE\u{7}"
    );
}

#[test]
fn controls_and_names_are_checked_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = Console::start(dir.path(), &[], &[]);
    console.ok("/agent stop agent-2");
    for line in ["/agent pause agent-2", "/agent resume agent-2"] {
        let (kind, message) = console.refused(line);
        assert_eq!(kind, "agent_state", "{line}: {message}");
        assert!(message.contains("/agent restart"), "{message}");
    }
    for (line, fragment) in [
        ("/agent spawn all", "every agent"),
        ("/agent spawn system", "the swarm itself"),
        ("/agent spawn Agent-1", "lower case"),
        ("/agent spawn agent-9 --skills ,,,", "no skill"),
    ] {
        let (kind, message) = console.refused(line);
        assert_eq!(kind, "invalid_argument", "{line}");
        assert!(message.contains(fragment), "{line}: {message}");
    }
    let spawned = console.ok("/agent spawn agent-2");
    assert_ne!(
        spawned["agent"]["status"], "paused",
        "no order waited in its queue"
    );
    console.finish();
}

#[test]
fn the_command_line_tools_check_what_the_console_checks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    for args in [
        vec!["search", "x", "--limit", "0"],
        vec!["search", "x", "--limit", "5000"],
        vec!["symbol", "x", "--limit", "99999999999999999999"],
        vec!["deps", "a.rs", "--depth", "0"],
        vec!["deps", "a.rs", "--depth", "1000000"],
        vec!["refs", "x", "--limit", "0"],
        vec!["impact", "x", "--depth", "0"],
        vec!["impact", "x", "--depth", "1000000"],
    ] {
        let mut full = vec!["--data-dir", data];
        full.extend(&args);
        let (status, _, stderr) = run_dreamos(&full, &[], "");
        assert!(!status.success(), "{args:?} was accepted");
        assert!(
            stderr.contains("must be a whole number between"),
            "{args:?}: {stderr}"
        );
    }
    // An empty DREAMOS_DATA_DIR is as good as unset.
    let (status, _, stderr) = run_dreamos(
        &["--data-dir", data, "repos"],
        &[("DREAMOS_DATA_DIR", "")],
        "",
    );
    assert!(status.success(), "{stderr}");
    let (status, _, stderr) = dreamos_run_in(dir.path(), &["repos"], &[("DREAMOS_DATA_DIR", "")]);
    assert!(status.success(), "{stderr}");
}

fn dreamos_run_in(
    cwd: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::ExitStatus, String, String) {
    let output = dreamos_command(args, env)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run dreamos");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn pseudo_filesystems_are_refused_and_the_data_directory_is_never_indexed() {
    let (status, _, stderr) = run_dreamos(
        &[
            "--data-dir",
            "/tmp/dreamos-hostile-unused",
            "index",
            "/proc",
        ],
        &[],
        "",
    );
    assert!(!status.success());
    assert!(stderr.contains("pseudo-filesystem"), "{stderr}");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = Console::start(
        dir.path(),
        &[],
        &[("DREAMOS_SCANNER__ALLOWED_ROOTS", "[\"/\"]")],
    );
    let (kind, message) = console.refused("/index /proc");
    assert_eq!(kind, "not_found", "{message}");
    assert!(message.contains("pseudo-filesystem"), "{message}");
    console.finish();

    // `/index .` from a directory holding the data directory indexes the repository, not the store and logs.
    let repo = tempfile::tempdir().expect("repo");
    std::fs::write(repo.path().join("main.rs"), "fn main() {}\n").expect("write");
    let output = dreamos_command(
        &["run", "--json"],
        &[("DREAMOS_SCANNER__ALLOWED_ROOTS", "[\".\"]")],
    )
    .current_dir(repo.path())
    .spawn()
    .and_then(|mut child| {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"/status\n/index . --wait\n")?;
        drop(stdin);
        child.wait_with_output()
    })
    .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["command"] == "index")
        .expect("an index answer");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["data"]["files"], 1, "only main.rs: {report}");
}

#[test]
fn a_queue_can_be_purged_by_the_captain() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = Console::start(dir.path(), &[], &[]);
    console.ok("/agent pause agent-3");
    for i in 0..5 {
        console.ok(&format!("/send agent-3 waiting {i}"));
    }
    let purged = console.ok("/agent purge agent-3");
    assert_eq!(purged["purged"], 5, "{purged}");
    assert_eq!(purged["agent"]["queue"], 0);
    let letters = console.ok("/deadletters")["dead_letters"].clone();
    let letters = letters.as_array().expect("letters");
    assert_eq!(letters.len(), 5);
    assert!(letters[0]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("purged from agent-3's queue by console"));
    let notices = console.ok("/history --kind notice.purged")["messages"].clone();
    assert_eq!(
        notices.as_array().map(Vec::len),
        Some(1),
        "one notice for the purge"
    );
    console.finish();
    let mut viewer = Console::start(dir.path(), &["--role", "viewer"], &[]);
    assert_eq!(viewer.refused("/agent purge agent-1").0, "forbidden");
    viewer.finish();
}

#[test]
fn a_hit_on_a_huge_line_gives_a_bounded_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("repo");
    let huge = format!(
        "const DATA: &str = \"{} needle {}\";\n",
        "a ".repeat(150_000),
        "b ".repeat(150_000)
    );
    std::fs::write(repo.join("big.rs"), huge).expect("write");
    let roots = format!("[\"{}\"]", dir.path().display());
    let mut console = Console::start(
        &dir.path().join("data"),
        &[],
        &[
            ("DREAMOS_SCANNER__ALLOWED_ROOTS", roots.as_str()),
            ("DREAMOS_SCANNER__MAX_FILE_BYTES", "2000000"),
        ],
    );
    console.ok(&format!("/index {} --wait", repo.display()));
    let hits = console.ok("/search needle");
    assert_eq!(
        hits["hits"].as_array().map(Vec::len),
        Some(1),
        "{}",
        &hits.to_string()[..300]
    );
    let snippet = hits["hits"][0]["snippet"].as_str().unwrap_or_default();
    assert!(
        snippet.chars().count() < 2000,
        "{} characters",
        snippet.len()
    );
    // Through an agent, the reply fits the message log instead of failing into a dead letter.
    let reply = console.ok("/send agent-1 needle --kind search --wait");
    assert!(
        reply["reply"]["body"]["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("1 hit"),
        "{reply}"
    );
    assert_eq!(console.ok("/status")["messages"]["dead_letters"], 0);
    console.finish();
}

#[test]
fn every_search_is_bounded_in_cost_and_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).expect("repo");
    std::fs::write(
        repo.join("big.txt"),
        format!("{}c\nshort aab line\n", "a".repeat(900_000)),
    )
    .expect("write");
    let body = "fn alpha() {}\n".repeat(100);
    for i in 0..300 {
        std::fs::write(repo.join(format!("src/f{i}.rs")), &body).expect("write");
    }
    let roots = format!("[\"{}\"]", dir.path().display());
    let env = [
        ("DREAMOS_SCANNER__ALLOWED_ROOTS", roots.as_str()),
        ("DREAMOS_SCANNER__MAX_FILE_BYTES", "2000000"),
    ];
    let mut console = Console::start(&dir.path().join("data"), &[], &env);
    console.ok(&format!("/index {} --wait", repo.display()));

    // A regex that would take a minute on the long line is refused before any work, naming its limit.
    let started = std::time::Instant::now();
    let (kind, message) = console.refused("/search /a{4000}b/");
    assert_eq!(kind, "query_too_expensive");
    assert!(message.contains("query_max_regex_states"), "{message}");
    let (kind, _) = console.refused("/search /a{100000}/");
    assert_eq!(kind, "query_too_expensive");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // Through an agent the sender gets the error as the reply; nothing is retried into a dead letter.
    let reply = console.ok("/send agent-1 /a{4000}b/ --kind search --wait");
    assert_eq!(
        reply["reply"]["body"]["error"]["kind"], "query_too_expensive",
        "{reply}"
    );
    // A 1,000-character symbol name is a bad query, not an internal error.
    let (kind, message) = console.refused(&format!("/symbol {}", "a".repeat(1000)));
    assert_eq!(kind, "invalid_query", "{message}");
    // Under the limits the same shapes answer.
    console.ok("/search /a{1000}b/");
    assert_eq!(console.ok("/status")["messages"]["dead_letters"], 0);
    console.finish();

    // A search past its time limit stops with `timeout`, naming the key that sets it.
    let mut console = Console::start(
        &dir.path().join("data"),
        &[],
        &[env[0], env[1], ("DREAMOS_SCANNER__QUERY_TIMEOUT", "1ms")],
    );
    let (kind, message) = console.refused("/search /al.ha/ --limit 1000");
    assert_eq!(kind, "timeout", "{message}");
    assert!(message.contains("query_timeout"), "{message}");
    console.finish();

    // The command-line tool keeps the same bounds.
    let data = dir.path().join("data");
    let (status, _, stderr) = dreamos_run_in(
        dir.path(),
        &[
            "search",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "/a{4000}b/",
        ],
        &[],
    );
    assert!(!status.success());
    assert!(stderr.contains("query_max_regex_states"), "{stderr}");
}
