//! Overload is refused before acceptance: 100,000 sends to a paused agent through the `dreamos` binary. The first
//! `max_queued` are accepted, the rest get `overloaded` and nothing of them is stored; the process's memory stays
//! bounded; after `/agent resume` every accepted message is handled exactly once.
//!
//! `DREAMOS_OVERLOAD_SENDS` changes the number of sends (default 100,000).

use std::{
    collections::{HashMap, HashSet},
    io::Write,
    time::{Duration, Instant},
};

use dreamos_tests::{Console, Line};
use serde_json::Value;

const MAX_QUEUED: usize = 1000;

/// Resident and peak resident memory of a process, in KiB, from /proc.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
fn sends_beyond_an_agents_bound_are_refused_and_nothing_refused_is_stored() {
    let sends: usize = std::env::var("DREAMOS_OVERLOAD_SENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let max = MAX_QUEUED.to_string();
    let mut console = Console::start(
        dir.path(),
        &[],
        &[("DREAMOS_MESSAGES__MAX_QUEUED", max.as_str())],
    );
    console.ok("/agent pause agent-1");
    let pid = console.pid();

    let mut stdin = console.take_stdin();
    let writer = std::thread::spawn(move || {
        for i in 0..sends {
            writeln!(stdin, "/send agent-1 flood-{i}").expect("write to the console");
        }
        stdin
    });

    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let mut accepted: Vec<String> = Vec::new();
    let mut refused = 0usize;
    let mut rss_at = Vec::new();
    for i in 0..sends {
        let answer = loop {
            match console.next_line(deadline) {
                Some(Line::Answer(answer)) => break answer,
                Some(Line::Event(_)) => {}
                Some(Line::Text(text)) => console.fail(&format!("not JSON: {text}")),
                None => console.fail("the console exited during the flood"),
            }
        };
        if answer["ok"] == Value::Bool(true) {
            accepted.push(answer["data"]["id"].as_str().expect("id").to_string());
        } else {
            let kind = answer["error"]["kind"].as_str().unwrap_or_default();
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            if kind != "overloaded"
                || !message.contains("max_queued")
                || !message.contains("paused")
            {
                console.fail(&format!("send {i} refused for another reason: {answer}"));
            }
            refused += 1;
        }
        if (i + 1) % (sends / 10).max(1) == 0 {
            rss_at.push((i + 1, memory_kib(pid)));
        }
    }
    let mut stdin = writer.join().expect("writer");
    let elapsed = started.elapsed();
    assert_eq!(accepted.len(), MAX_QUEUED, "exactly the bound is accepted");
    assert_eq!(refused, sends - MAX_QUEUED);
    eprintln!(
        "overload: {sends} sends in {:.1} s; {} accepted, {refused} refused; RSS/peak (MB) after n sends: {}",
        elapsed.as_secs_f64(),
        accepted.len(),
        rss_at
            .iter()
            .map(|(n, (rss, hwm))| format!("{n}: {}/{}", rss / 1024, hwm / 1024))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Memory is bounded: the mailbox holds at most the bound, and the rest was never taken in. What still grows
    // with the number of commands is the audit log in sled's cache, a few hundred bytes a command.
    let (_, peak) = rss_at.last().map(|(_, m)| *m).unwrap_or_default();
    assert!(peak < 512 * 1024, "peak RSS {} MB", peak / 1024);
    if let (Some((_, (first, _))), Some((_, (last, _)))) = (rss_at.first(), rss_at.last()) {
        let per_send = (last.saturating_sub(*first) * 1024) as f64 / (sends - sends / 10) as f64;
        assert!(
            per_send < 2048.0,
            "RSS grew {per_send:.0} bytes a refused send"
        );
    }

    // Nothing refused is in history: exactly the accepted messages are.
    writeln!(stdin, "/history --agent agent-1 --kind ping --limit 1000").expect("write");
    let page = console.answer();
    let ids: HashSet<String> = page["data"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(
        page["data"]["next_before"],
        Value::Null,
        "more than a page: {page}"
    );
    assert_eq!(ids, accepted.iter().cloned().collect::<HashSet<_>>());

    // Resumed, the agent handles every accepted message once.
    writeln!(stdin, "/agent resume agent-1").expect("write");
    let resumed = console.answer();
    assert_eq!(resumed["ok"], Value::Bool(true), "{resumed}");
    let mut replies: HashMap<String, usize> = HashMap::new();
    let wanted: HashSet<&String> = accepted.iter().collect();
    for event in std::mem::take(&mut console.events) {
        if let Some(to) = event["data"]["reply_to"].as_str() {
            *replies.entry(to.to_string()).or_default() += 1;
        }
    }
    while wanted.iter().any(|id| !replies.contains_key(id.as_str())) {
        match console.next_line(deadline) {
            Some(Line::Event(event)) => {
                if let Some(to) = event["data"]["reply_to"].as_str() {
                    *replies.entry(to.to_string()).or_default() += 1;
                }
            }
            Some(other) => console.fail(&format!("waiting for replies, got {other:?}")),
            None => console.fail("the console exited before every reply"),
        }
    }
    drop(stdin);
    for line in console.finish() {
        if let Line::Event(event) = line {
            if let Some(to) = event["data"]["reply_to"].as_str() {
                *replies.entry(to.to_string()).or_default() += 1;
            }
        }
    }
    for id in &accepted {
        assert_eq!(
            replies.get(id),
            Some(&1),
            "{id} must be handled exactly once"
        );
    }
}
