//! Dreamscribe through the real binary: every acknowledged `/remember` survives SIGKILL and is found after the
//! restart, by `/journal` and by `/recall`, also when the search index was deleted or corrupted in between (it is
//! rebuilt from sled at start); bad input is refused with a kind and stores nothing.
//!
//! `DREAMOS_MEMORY_CRASH_ITERATIONS` sets the number of kills (default 12); `DREAMOS_MEMORY_CRASH_SEED` replays a
//! run.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use dreamos_tests::{Console, Feeder, Line};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::Value;

/// The automatic journal is off, so that the entries are exactly those written here.
const NO_JOURNAL: (&str, &str) = ("DREAMOS_MEMORY__JOURNAL", "[]");

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every entry in the journal, newest first, paging with --before.
fn whole_journal(console: &mut Console) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let line = match &before {
            None => "/journal --limit 1000".to_string(),
            Some(id) => format!("/journal --limit 1000 --before {id}"),
        };
        let page = console.ok(&line);
        entries.extend(page["entries"].as_array().expect("entries").iter().cloned());
        match page["next_before"].as_str() {
            Some(id) => before = Some(id.to_string()),
            None => return entries,
        }
    }
}

#[test]
fn acknowledged_entries_survive_sigkill_and_are_found_after_restart_even_with_the_index_gone() {
    let iterations = env_number("DREAMOS_MEMORY_CRASH_ITERATIONS", 12);
    let seed = env_number("DREAMOS_MEMORY_CRASH_SEED", rand::rng().random());
    eprintln!(
        "memory crash test: {iterations} kills, seed {seed} (DREAMOS_MEMORY_CRASH_SEED={seed} replays it)"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let index_dir = dir.path().join("memory");
    // Acknowledged entries: id -> the unique word of their text.
    let mut acked: HashMap<String, String> = HashMap::new();

    for iteration in 0..iterations {
        // Now and then the index is deleted or corrupted while the process is down: the next start rebuilds it.
        match iteration % 4 {
            1 if index_dir.exists() => {
                std::fs::remove_dir_all(&index_dir).expect("delete the index")
            }
            3 if index_dir.join("meta.json").exists() => {
                std::fs::write(index_dir.join("meta.json"), b"{ corrupt")
                    .expect("corrupt the index")
            }
            _ => {}
        }
        let mut console = Console::start(dir.path(), &[], &[NO_JOURNAL]);
        let kill_after = rng.random_range(1..=300);
        let mut feeder = Feeder::start(&mut console, move |n| {
            format!(
                "/remember crash entry k{iteration}x{n} about the deploy of service {} --kind note --tags crash",
                n % 7
            )
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut read = 0;
        while read < kill_after {
            match console.next_line(deadline) {
                Some(Line::Answer(answer)) => {
                    if answer["ok"] != Value::Bool(true) {
                        // The writer's queue is bounded: a fast feeder may be told to slow down.
                        if answer["error"]["kind"] == "overloaded" {
                            continue;
                        }
                        console.fail(&format!("a /remember was refused: {answer}"));
                    }
                    let entry = &answer["data"]["entry"];
                    let id = entry["id"].as_str().expect("id").to_string();
                    let text = entry["text"].as_str().expect("text");
                    let word = text.split(' ').nth(2).expect("the unique word").to_string();
                    assert!(acked.insert(id, word).is_none(), "an id was given twice");
                    read += 1;
                }
                Some(Line::Event(_)) => {}
                Some(Line::Text(text)) => console.fail(&format!("not JSON: {text}")),
                None => console.fail("the console exited on its own"),
            }
        }
        console.kill();
        feeder.stop();
    }

    // The last kill may have left the index behind sled; delete it too, so that recall runs on a rebuilt one.
    if index_dir.exists() {
        std::fs::remove_dir_all(&index_dir).expect("delete the index");
    }
    let mut console = Console::start(dir.path(), &[], &[NO_JOURNAL]);
    let journal = whole_journal(&mut console);
    let in_journal: HashSet<&str> = journal
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    let lost: Vec<&String> = acked
        .keys()
        .filter(|id| !in_journal.contains(id.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // Newest first, ids strictly decreasing.
    let ids: Vec<&str> = journal
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "the journal is not newest first"
    );
    // Each acknowledged entry is found by its own word (a sample, to keep the run short).
    let mut sample: Vec<(&String, &String)> = acked.iter().collect();
    sample.sort();
    for (id, word) in sample.iter().step_by((acked.len() / 150).max(1)) {
        let found = console.ok(&format!("/recall {word} --limit 3"));
        assert_eq!(
            found["hits"][0]["id"].as_str(),
            Some(id.as_str()),
            "/recall {word}: {found}"
        );
    }
    let all = console.ok("/recall crash deploy --limit 1");
    assert_eq!(all["matched"].as_u64(), Some(journal.len() as u64), "{all}");
    console.finish();
    eprintln!(
        "memory crash test: {} acknowledged across {iterations} kills, {} in the journal",
        acked.len(),
        journal.len()
    );
}

#[test]
fn bad_input_is_refused_with_a_kind_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = Console::start(
        dir.path(),
        &[],
        &[NO_JOURNAL, ("DREAMOS_MEMORY__MAX_TEXT_BYTES", "100")],
    );
    let long = "x".repeat(101);
    let cases: Vec<(String, &str, &str)> = vec![
        ("/remember".into(), "missing_argument", "TEXT"),
        ("/remember \"   \"".into(), "invalid_argument", "empty"),
        (
            format!("/remember {long}"),
            "invalid_argument",
            "max_text_bytes",
        ),
        (
            "/remember hi --tags \"Bad Tag\"".into(),
            "invalid_argument",
            "not a valid tag",
        ),
        (
            "/remember hi --tags ci,ci".into(),
            "invalid_argument",
            "twice",
        ),
        (
            "/remember hi --kind chat".into(),
            "invalid_argument",
            "kind",
        ),
        (
            "/remember hi --tasks seven".into(),
            "invalid_argument",
            "task id",
        ),
        (
            "/remember hi --files nowhere".into(),
            "invalid_argument",
            "repo:path:line",
        ),
        (
            "/remember hi --agents agent-77".into(),
            "unknown_agent",
            "agent-77",
        ),
        (
            "/remember hi --messages 123".into(),
            "invalid_argument",
            "message id",
        ),
        ("/recall \"  \"".into(), "invalid_argument", "words"),
        (
            "/recall deploy --since 1h --until 2h".into(),
            "invalid_argument",
            "not before",
        ),
        (
            "/recall deploy --since yesterdayish".into(),
            "invalid_argument",
            "neither a time",
        ),
        (
            "/recall deploy --tags Bad".into(),
            "invalid_argument",
            "not a valid tag",
        ),
        ("/journal --before 42".into(), "invalid_argument", "ULID"),
        ("/forget 42".into(), "invalid_argument", "ULID"),
        (
            "/forget 01JDQ6Z3M4N5P6Q7R8S9T0V1W2".into(),
            "unknown_entry",
            "01JDQ6Z3M4N5P6Q7R8S9T0V1W2",
        ),
    ];
    for (line, kind, needle) in &cases {
        let (got, message) = console.refused(line);
        assert_eq!(&got, kind, "{line}: {message}");
        assert!(
            message.contains(needle),
            "{line}: `{message}` should say {needle}"
        );
    }
    assert!(console.ok("/journal")["entries"]
        .as_array()
        .expect("entries")
        .is_empty());
    // A viewer may recall but not write or forget.
    let entry =
        console.ok("/remember the on-call rota changes on mondays --kind fact")["entry"].clone();
    let id = entry["id"].as_str().expect("id").to_string();
    console.finish();
    let mut viewer = Console::start(dir.path(), &["--role", "viewer"], &[NO_JOURNAL]);
    assert_eq!(viewer.refused(&format!("/forget {id}")).0, "forbidden");
    assert_eq!(viewer.refused("/remember hi").0, "forbidden");
    let found = viewer.ok("/recall rota monday");
    assert_eq!(found["hits"][0]["id"].as_str(), Some(id.as_str()));
    assert_eq!(
        viewer.ok("/journal")["entries"]
            .as_array()
            .expect("entries")
            .len(),
        1
    );
    viewer.finish();
    // The captain forgets it: gone from the journal and from recall; the forget itself is journaled.
    let mut captain = Console::start(dir.path(), &[], &[NO_JOURNAL]);
    assert_eq!(
        captain.ok(&format!("/forget {id}"))["entry"]["id"].as_str(),
        Some(id.as_str())
    );
    assert!(captain.ok("/recall rota monday")["hits"]
        .as_array()
        .expect("hits")
        .is_empty());
    let journal = captain.ok("/journal");
    let entries = journal["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{journal}");
    assert!(entries[0]["text"]
        .as_str()
        .expect("text")
        .contains(&format!("forgot entry {id}")));
    captain.finish();
}
