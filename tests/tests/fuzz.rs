//! Seeded fuzzing through the binary: random bytes, invalid UTF-8, huge lines, control characters and random
//! commands with random options, fed to `dreamos run --json` and to the command-line tools.
//!
//! Checks: one answer per line (comments excepted, by the README's rule), exit 0 at end of input, no panic, and
//! after a restart on the same data directory `/status` and `/history` answer, and the store holds exactly the
//! messages whose sends were accepted: nothing from a refused line.
//!
//! `DREAMOS_FUZZ_LINES` (default 300) and `DREAMOS_FUZZ_RUNS` (command-line runs, default 40) set the amount,
//! `DREAMOS_FUZZ_SEED` the seed (default fixed; a failure prints the seed to rerun it).

use std::{collections::BTreeSet, io::Write, process::Stdio};

use dreamos_tests::dreamos_command;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::Value;

fn env_number(key: &str, default: u64) -> u64 {
    match std::env::var(key) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{key}={text:?} is not a number")),
        Err(_) => default,
    }
}

const COMMANDS: &[&str] = &[
    "help",
    "status",
    "agents",
    "agent spawn",
    "agent stop",
    "agent restart",
    "agent pause",
    "agent resume",
    "agent purge",
    "agent",
    "send",
    "broadcast",
    "history",
    "index",
    "search",
    "symbol",
    "outline",
    "deps",
    "refs",
    "impact",
    "repos",
    "deadletters",
    "nosuchcommand",
    "",
];

const OPTIONS: &[&str] = &[
    "--priority",
    "--kind",
    "--wait",
    "--limit",
    "--before",
    "--agent",
    "--lang",
    "--path",
    "--repo",
    "--name",
    "--depth",
    "--skills",
    "--groups",
    "--subscribe",
    "--kind=search",
    "--",
    "-x",
    "--no-such-option",
];

/// A random word: names, numbers at and past every bound, quotes, escapes, control characters, wide text.
fn word(rng: &mut impl Rng) -> String {
    let pool: &[&str] = &[
        "agent-1",
        "agent-2",
        "group:crew",
        "all",
        "system",
        "Agent-1",
        "crew",
        "ping",
        "search",
        "report",
        "fault",
        "urgent",
        "low",
        "0",
        "-1",
        "1",
        "1000",
        "1001",
        "99999999999999999999",
        "1.5",
        "NaN",
        ".",
        "..",
        "/",
        "/proc",
        "src/lib.rs",
        "lib.rs",
        "\"unterminated",
        "'single",
        "\"a b\"",
        "\\",
        "/a{4000}b/",
        "/(/",
        "/.*/",
        "lang:rust",
        "path:**",
        "repo:nope",
        "sym:main",
        "\u{1b}[31mRED\u{1b}]0;TITLE\u{7}",
        "\u{202e}evil",
        "\u{0}",
        "naïve",
        "日本語",
        "\u{3000}",
        "\u{2028}",
        "#",
        "01M8S4ZY5096XTZP9B7SD33DWH",
        "--wait",
    ];
    match rng.random_range(0..10) {
        0 => {
            let n = rng.random_range(1..40);
            (0..n)
                .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
                .collect()
        }
        1 => {
            let n = rng.random_range(1..12);
            (0..n)
                .map(|_| char::from_u32(rng.random_range(0..0x3_0000)).unwrap_or('?'))
                .collect()
        }
        2 => "x".repeat(rng.random_range(100..20_000)),
        _ => pool[rng.random_range(0..pool.len())].to_string(),
    }
}

/// One random console line (without its newline), as bytes.
fn line(rng: &mut impl Rng, max_line: usize) -> Vec<u8> {
    match rng.random_range(0..20) {
        // Raw bytes, often not UTF-8.
        0 => (0..rng.random_range(0..200))
            .map(|_| rng.random::<u8>())
            .filter(|b| *b != b'\n')
            .collect(),
        // Over the line limit.
        1 => {
            let mut l = b"/send agent-1 ".to_vec();
            l.resize(max_line + rng.random_range(1..1000), b'y');
            l
        }
        // A command with a Latin-1 byte in it.
        2 => b"/send agent-1 caf\xe9".to_vec(),
        // Comments and blank lines.
        3 => [" ", "", "\t", "# note", "   # indented", "\u{3000}\u{2028}"][rng.random_range(0..6)]
            .as_bytes()
            .to_vec(),
        // Control characters.
        4 => {
            let mut l = b"/send agent-1 ".to_vec();
            l.extend((0..rng.random_range(1..30)).map(|_| rng.random_range(0u8..0x20)));
            l.retain(|b| *b != b'\n');
            l
        }
        // A random command with random options and values.
        _ => {
            let mut parts: Vec<String> = Vec::new();
            let slash = if rng.random_range(0..12) == 0 {
                ""
            } else {
                "/"
            };
            parts.push(format!(
                "{slash}{}",
                COMMANDS[rng.random_range(0..COMMANDS.len())]
            ));
            for _ in 0..rng.random_range(0..6) {
                if rng.random_bool(0.4) {
                    parts.push(OPTIONS[rng.random_range(0..OPTIONS.len())].to_string());
                }
                parts.push(word(rng));
            }
            parts.join(" ").replace('\n', " ").into_bytes()
        }
    }
}

/// How the console's line rules say a line is answered: `true` unless it is a comment.
fn is_answered(line: &[u8], max_line: usize) -> bool {
    if line.len() > max_line {
        return true;
    }
    match std::str::from_utf8(line) {
        Err(_) => true,
        Ok(text) => {
            let text = text.trim();
            !(text.is_empty() || text.starts_with('#'))
        }
    }
}

fn is_quit(line: &[u8]) -> bool {
    std::str::from_utf8(line).is_ok_and(|t| matches!(t.trim(), "/quit" | "/exit"))
}

/// A tiny repository for `/index .` and the code commands to work on.
fn write_repo(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("src")).expect("mkdir");
    std::fs::write(
        dir.join("src/lib.rs"),
        "pub fn main_loop() {}\npub struct Parser;\nuse crate::util;\n",
    )
    .expect("write");
    std::fs::write(dir.join("src/util.rs"), "pub fn helper() -> u32 { 1 }\n").expect("write");
    std::fs::write(dir.join("tool.py"), "import os\ndef run():\n    return 1\n").expect("write");
}

/// Runs `dreamos run --json` on `input` in `cwd`; returns the parsed stdout lines.
fn console(cwd: &std::path::Path, data: &std::path::Path, input: &[u8], seed: u64) -> Vec<Value> {
    let mut child = dreamos_command(
        &["run", "--json", "--data-dir", data.to_str().expect("utf-8")],
        &[
            ("DREAMOS_MESSAGES__WAIT_TIMEOUT", "300ms"),
            ("DREAMOS_SHUTDOWN__DRAIN_TIMEOUT", "3s"),
            ("DREAMOS_CONSOLE__MAX_LINE_BYTES", "65536"),
        ],
    )
    .current_dir(cwd)
    .spawn()
    .expect("start dreamos");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written from a thread: the console answers while it reads, and a full stdout pipe would block both sides.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("output");
    writer.join().expect("writer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "seed {seed}: exit {} at end of input: {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "seed {seed}: {stderr}");
    String::from_utf8(output.stdout)
        .unwrap_or_else(|e| panic!("seed {seed}: stdout is not UTF-8: {e}"))
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("seed {seed}: not JSON ({e}): {l}"))
        })
        .collect()
}

#[test]
fn random_console_input_gets_one_answer_per_line_and_stores_nothing_refused() {
    let seed = env_number("DREAMOS_FUZZ_SEED", 20261201);
    let count = env_number("DREAMOS_FUZZ_LINES", 300) as usize;
    let max_line = 65536;
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    write_repo(dir.path());
    let data = dir.path().join("data");

    let mut lines: Vec<Vec<u8>> = Vec::new();
    while lines.len() < count {
        let l = line(&mut rng, max_line);
        if !is_quit(&l) {
            lines.push(l);
        }
    }
    let expected = lines.iter().filter(|l| is_answered(l, max_line)).count();
    let mut input = Vec::new();
    for l in &lines {
        input.extend_from_slice(l);
        input.push(b'\n');
    }
    let out = console(dir.path(), &data, &input, seed);
    let answers: Vec<&Value> = out.iter().filter(|v| v.get("ok").is_some()).collect();
    assert_eq!(
        answers.len(),
        expected,
        "seed {seed}: one answer per line that is not a comment"
    );
    for a in &answers {
        if a["ok"] == false {
            let kind = a["error"]["kind"].as_str().unwrap_or_default();
            let message = a["error"]["message"].as_str().unwrap_or_default();
            assert!(!kind.is_empty() && !message.is_empty(), "seed {seed}: {a}");
            assert_ne!(kind, "internal", "seed {seed}: {a}");
            assert!(
                message.len() < 4096,
                "seed {seed}: an error of {} bytes",
                message.len()
            );
        }
    }
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for a in &answers {
        let key = if a["ok"] == true {
            format!("ok {}", a["command"].as_str().unwrap_or_default())
        } else {
            a["error"]["kind"].as_str().unwrap_or_default().to_string()
        };
        *kinds.entry(key).or_default() += 1;
    }
    eprintln!("seed {seed}: {count} lines, {expected} answered: {kinds:?}");
    // What the console accepted into the message log: sends and broadcasts that answered ok.
    let accepted: BTreeSet<String> = answers
        .iter()
        .filter(|a| a["ok"] == true && matches!(a["command"].as_str(), Some("send" | "broadcast")))
        .filter_map(|a| a["data"]["id"].as_str().map(str::to_string))
        .collect();
    let agent_orders = answers
        .iter()
        .filter(|a| a["ok"] == true && a["command"] == "agent")
        .count();

    // A restart on the same data directory answers, and the store holds exactly what was accepted.
    let after = console(dir.path(), &data, b"/status\n/history --limit 1000\n", seed);
    let answers: Vec<&Value> = after.iter().filter(|v| v.get("ok").is_some()).collect();
    assert_eq!(answers.len(), 2, "seed {seed}: {after:?}");
    assert_eq!(answers[0]["ok"], true, "seed {seed}: {}", answers[0]);
    assert_eq!(answers[1]["ok"], true, "seed {seed}: {}", answers[1]);
    let stored: BTreeSet<String> = answers[1]["data"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["from"].as_str().is_some_and(|f| f.contains("console")))
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    // `/agent pause|resume NAME` answer with the agent's state, not a message id: their orders are counted.
    let (orders, unexpected): (Vec<&Value>, Vec<&Value>) = answers[1]["data"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| {
            m["id"]
                .as_str()
                .is_some_and(|id| stored.contains(id) && !accepted.contains(id))
        })
        .partition(|m| {
            m["channel"] == "captain" && matches!(m["kind"].as_str(), Some("pause" | "resume"))
        });
    assert!(
        orders.len() <= agent_orders,
        "seed {seed}: {} orders stored, {agent_orders} accepted",
        orders.len()
    );
    let lost: Vec<&String> = accepted.difference(&stored).collect();
    assert!(
        unexpected.is_empty() && lost.is_empty(),
        "seed {seed}: the store holds the accepted messages and nothing else; stored but not accepted: {unexpected:?}; accepted but not stored: {lost:?}"
    );
}

#[test]
fn random_arguments_to_the_command_line_tools_never_panic() {
    let seed = env_number("DREAMOS_FUZZ_SEED", 20261201);
    let runs = env_number("DREAMOS_FUZZ_RUNS", 40);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    write_repo(dir.path());
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8").to_string();
    let (status, _, stderr) = {
        let out = dreamos_command(&["index", "--data-dir", &data_arg, "."], &[])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("index");
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(status.success(), "{stderr}");
    let tools = ["search", "symbol", "outline", "deps", "refs", "impact"];
    let tool_options = [
        "--limit", "--lang", "--path", "--repo", "--depth", "--kind", "--json",
    ];
    for run in 0..runs {
        let tool = tools[(run as usize) % tools.len()];
        let mut args: Vec<String> = vec![tool.to_string(), "--data-dir".into(), data_arg.clone()];
        for _ in 0..rng.random_range(0..4) {
            if rng.random_bool(0.5) {
                args.push(tool_options[rng.random_range(0..tool_options.len())].to_string());
            }
            // Process arguments cannot hold NUL.
            args.push(word(&mut rng).replace('\0', ""));
        }
        let out = dreamos_command(&[], &[])
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run a tool");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let shown: Vec<String> = args.iter().map(|a| a.chars().take(60).collect()).collect();
        assert!(
            !stderr.contains("panicked"),
            "seed {seed}, {shown:?}: {stderr}"
        );
        match out.status.code() {
            Some(0) => {}
            // A refusal says what was wrong.
            Some(1 | 2) => assert!(
                !stderr.trim().is_empty(),
                "seed {seed}, {shown:?}: failed without a message"
            ),
            other => panic!("seed {seed}, {shown:?}: exit {other:?}: {stderr}"),
        }
        assert!(
            stderr.len() < 16 * 1024,
            "seed {seed}, {shown:?}: an error of {} bytes",
            stderr.len()
        );
    }
}
