//! Crash test: a `dreamos run --json` child is fed `/send` commands continuously and killed with SIGKILL at a random
//! moment, again and again on the same data directory. Afterwards every message whose acceptance was read before a
//! kill must be in history, handled by its agent, with exactly one reply — handled exactly once.
//!
//! `DREAMOS_CRASH_ITERATIONS` sets the number of kills (default 20); `DREAMOS_CRASH_SEED` replays a run.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use dreamos_tests::{Console, Feeder, Line};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::Value;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn accepted_messages_survive_sigkill_and_are_handled_exactly_once() {
    let iterations = env_number("DREAMOS_CRASH_ITERATIONS", 20);
    let seed = env_number("DREAMOS_CRASH_SEED", rand::rng().random());
    eprintln!("crash test: {iterations} kills, seed {seed} (DREAMOS_CRASH_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut accepted: HashMap<String, u64> = HashMap::new();

    for iteration in 0..iterations {
        let mut console = Console::start(dir.path(), &[], &[]);
        // Kill after a random number of acceptances, sometimes the very first.
        let kill_after = rng.random_range(1..=400);
        let mut stdin = Feeder::start(&mut console, move |n| {
            format!("/send agent-{} crash {iteration}-{n}", n % 4 + 1)
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut read = 0;
        while read < kill_after {
            match console.next_line(deadline) {
                Some(Line::Answer(answer)) => {
                    if answer["ok"] != Value::Bool(true) {
                        console.fail(&format!("a send was refused: {answer}"));
                    }
                    let data = &answer["data"];
                    let id = data["id"].as_str().expect("id").to_string();
                    let seq = data["seq"].as_u64().expect("seq");
                    assert!(
                        accepted.insert(id, seq).is_none(),
                        "an id was accepted twice"
                    );
                    read += 1;
                }
                Some(Line::Event(_)) => {}
                Some(Line::Text(text)) => console.fail(&format!("not JSON: {text}")),
                None => console.fail("the console exited on its own"),
            }
        }
        console.kill();
        stdin.stop();
    }

    // Let a clean run finish what was left (end of input drains the queues), then read the whole history.
    let console = Console::start(dir.path(), &[], &[]);
    console.finish();
    let mut console = Console::start(dir.path(), &[], &[]);
    let (pings, replies) = read_history(&mut console);
    console.finish();

    let mut reply_count: HashMap<String, usize> = HashMap::new();
    for reply in &replies {
        let to = reply["reply_to"].as_str().expect("reply_to").to_string();
        *reply_count.entry(to).or_default() += 1;
    }
    let mut missing = Vec::new();
    for (id, seq) in &accepted {
        match pings.get(id) {
            None => missing.push(format!("{id} (seq {seq}) not in history")),
            Some(ping) => {
                assert_eq!(ping["seq"].as_u64(), Some(*seq), "{id} changed its seq");
                let receipts = ping["recipients"].as_array().expect("recipients");
                assert_eq!(receipts.len(), 1);
                assert_eq!(receipts[0]["status"], "handled", "{id}: {ping}");
                assert_eq!(
                    reply_count.get(id).copied().unwrap_or(0),
                    1,
                    "{id} must have exactly one reply"
                );
            }
        }
    }
    assert!(missing.is_empty(), "accepted but lost: {missing:?}");
    // Messages accepted but never read before a kill are fine; each still has exactly one reply.
    for (id, count) in &reply_count {
        assert_eq!(*count, 1, "{id} was handled {count} times");
    }
    let seqs: HashSet<u64> = accepted.values().copied().collect();
    assert_eq!(seqs.len(), accepted.len(), "sequence numbers are unique");
    eprintln!(
        "crash test: {} acceptances read across {iterations} kills, {} messages in history",
        accepted.len(),
        pings.len()
    );
}

/// Every ping (by id) and every reply in history, paging with --before.
fn read_history(console: &mut Console) -> (HashMap<String, Value>, Vec<Value>) {
    let mut pings = HashMap::new();
    let mut replies = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let line = match before {
            None => "/history --limit 1000".to_string(),
            Some(seq) => format!("/history --limit 1000 --before {seq}"),
        };
        let page = console.ok(&line);
        for message in page["messages"].as_array().expect("messages") {
            match message["kind"].as_str() {
                Some("ping") => {
                    pings.insert(
                        message["id"].as_str().expect("id").to_string(),
                        message.clone(),
                    );
                }
                Some("reply") => replies.push(message.clone()),
                _ => {}
            }
        }
        match page["next_before"].as_u64() {
            Some(seq) => before = Some(seq),
            None => return (pings, replies),
        }
    }
}
