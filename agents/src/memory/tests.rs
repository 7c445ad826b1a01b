//! Dreamscribe with a real swarm: sled in a temp dir, the real log, a real Tantivy index.

use std::{path::Path, time::Duration};

use dreamos_runtime::{
    config::{Config, Role},
    memory::{Author, EntryKind, Links, MemoryStore},
    message::{Address, AgentName, Body, Priority},
    task::{Origin, TaskSpec, TaskStatus},
    Store,
};
use serde_json::json;

use super::*;
use crate::{skill::SkillRegistry, Principal, Swarm};

async fn swarm_in(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Swarm {
    let mut config = Config::defaults();
    config.memory.journal = Vec::new();
    config.scanner.allowed_roots = vec![dir.to_path_buf()];
    tweak(&mut config);
    let store = Store::open(&dir.join("data")).expect("store");
    Swarm::start(config, store, SkillRegistry::builtin())
        .await
        .expect("swarm")
}

fn captain() -> Principal {
    Principal::new("console", Role::Captain)
}

fn person() -> Author {
    Author::Person {
        frontend: "console".into(),
        user: "console".into(),
        name: "console".into(),
    }
}

fn new(kind: EntryKind, text: &str, tags: &[&str]) -> NewEntry {
    NewEntry {
        author: person(),
        kind,
        text: text.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        links: Links::default(),
    }
}

fn words(words: &str, limit: usize) -> RecallQuery {
    RecallQuery {
        words: words.to_string(),
        filters: Filters::default(),
        limit,
    }
}

async fn texts(memory: &Memory, query: RecallQuery) -> Vec<String> {
    memory
        .recall(query)
        .await
        .expect("recall")
        .hits
        .into_iter()
        .map(|h| h.entry.text)
        .collect()
}

/// Polls until `pred` holds on the memory's journal (newest first), with a deadline.
async fn journal_until(memory: &Memory, what: &str, pred: impl Fn(&[Entry]) -> bool) -> Vec<Entry> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = memory
            .journal(&JournalQuery {
                limit: 1000,
                ..JournalQuery::default()
            })
            .expect("journal");
        if pred(&page.entries) {
            return page.entries;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; the journal has: {:#?}",
            page.entries.iter().map(|e| &e.text).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Returns once the wall clock is past `at` (within a millisecond or two).
async fn next_millisecond(at: Millis) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while Millis::now() <= at {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the clock did not move"
        );
        tokio::task::yield_now().await;
    }
}

fn has(entries: &[Entry], tag: &str, needle: &str) -> bool {
    entries.iter().any(|e| {
        e.author == Author::Swarm && e.tags.iter().any(|t| t == tag) && e.text.contains(needle)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_is_found_as_soon_as_it_is_acknowledged_and_forget_removes_it_everywhere() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |_| {}).await;
    let memory = swarm.memory().clone();
    let kept = swarm
        .remember(
            &captain(),
            new(
                EntryKind::Decision,
                "We keep sled for the message log: group commit makes fsync cheap.",
                &["store"],
            ),
        )
        .await
        .expect("test step");
    let other = swarm
        .remember(
            &captain(),
            new(
                EntryKind::Note,
                "The staging database listens on port 5433.",
                &[],
            ),
        )
        .await
        .expect("test step");
    // No wait: a recall sees every entry acknowledged before it.
    let found = memory
        .recall(words("why sled", 5))
        .await
        .expect("test step");
    assert_eq!(found.hits.len(), 1);
    assert_eq!(found.hits[0].entry.id, kept.id);
    assert!(
        found.hits[0].snippet.contains("**sled**"),
        "{}",
        found.hits[0].snippet
    );
    // Partial words and tags.
    assert_eq!(
        texts(&memory, words("datab stag", 5)).await,
        vec![other.text.clone()]
    );
    assert_eq!(
        texts(&memory, words("store", 5)).await,
        vec![kept.text.clone()]
    );

    let forgotten = swarm.forget(&captain(), kept.id).await.expect("test step");
    assert_eq!(forgotten.id, kept.id);
    assert!(memory.get(kept.id).expect("test step").is_none());
    assert!(texts(&memory, words("sled group commit", 5))
        .await
        .is_empty());
    // The forget is journaled, without the text it removed.
    let page = memory
        .journal(&JournalQuery {
            limit: 10,
            ..JournalQuery::default()
        })
        .expect("test step");
    let note = &page.entries[0];
    assert_eq!(note.author, Author::Swarm);
    assert!(
        note.text.contains(&format!("forgot entry {}", kept.id)),
        "{}",
        note.text
    );
    assert!(!note.text.contains("sled"), "{}", note.text);
    assert!(!memory
        .index()
        .all_ids()
        .expect("test step")
        .contains(&kept.id.to_string()));

    let again = swarm
        .forget(&captain(), kept.id)
        .await
        .expect_err("must fail");
    assert_eq!(again.kind(), "unknown_entry");
    let viewer = Principal::new("someone", Role::Viewer);
    assert_eq!(
        swarm
            .forget(&viewer, other.id)
            .await
            .expect_err("must fail")
            .kind(),
        "forbidden"
    );
    assert_eq!(
        swarm
            .remember(&viewer, new(EntryKind::Note, "x", &[]))
            .await
            .expect_err("must fail")
            .kind(),
        "forbidden"
    );
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_kind_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |c| c.memory.max_text_bytes = 64).await;
    let memory = swarm.memory().clone();
    let cases = [
        new(EntryKind::Note, "   ", &[]),
        new(EntryKind::Note, &"x".repeat(65), &[]),
        new(EntryKind::Note, "fine", &["Bad Tag"]),
        new(EntryKind::Note, "fine", &["a", "a"]),
        new(EntryKind::Note, "fine", &["-dash"]),
    ];
    for case in cases {
        let err = swarm
            .remember(&captain(), case.clone())
            .await
            .expect_err("must fail");
        assert_eq!(err.kind(), "invalid_argument", "{case:?}: {err}");
    }
    let backwards = RecallQuery {
        filters: Filters {
            since: Some(Millis(2_000)),
            until: Some(Millis(1_000)),
            ..Filters::default()
        },
        ..words("anything", 5)
    };
    assert_eq!(
        memory
            .recall(backwards)
            .await
            .expect_err("must fail")
            .kind(),
        "invalid_argument"
    );
    assert_eq!(
        memory
            .recall(words("  ", 5))
            .await
            .expect_err("must fail")
            .kind(),
        "invalid_argument"
    );
    assert_eq!(
        memory
            .recall(words("the and of", 5))
            .await
            .expect_err("must fail")
            .kind(),
        "invalid_argument"
    );
    assert_eq!(memory.stats().written, 0);
    assert_eq!(
        MemoryStore::open(swarm.store()).expect("test step").count(),
        0
    );
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_writer_queue_refuses_with_overloaded_before_storing() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |c| c.memory.max_pending = 4).await;
    let memory = swarm.memory().clone();
    // All submitted within one poll on this one thread: the writer cannot drain the queue in between.
    let writes = (0..20).map(|i| memory.remember(new(EntryKind::Note, &format!("entry {i}"), &[])));
    let results = futures::future::join_all(writes).await;
    let refused = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.kind() == "overloaded"))
        .count();
    let stored = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((stored, refused), (4, 16), "{results:?}");
    assert_eq!(
        MemoryStore::open(swarm.store()).expect("test step").count(),
        4
    );
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_pages_newest_first_with_filters() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |_| {}).await;
    let memory = swarm.memory().clone();
    for i in 0..7 {
        let mut entry = new(
            if i % 2 == 0 {
                EntryKind::Fact
            } else {
                EntryKind::Note
            },
            &format!("entry {i}"),
            &[],
        );
        if i == 3 {
            entry.links.agents.push("agent-2".into());
        }
        memory.remember(entry).await.expect("test step");
    }
    let page = |kind, agent: Option<&str>, before, limit| {
        memory
            .journal(&JournalQuery {
                agent: agent.map(str::to_string),
                kind,
                before,
                limit,
            })
            .expect("test step")
    };
    let first = page(None, None, None, 3);
    let text = |p: &JournalPage| p.entries.iter().map(|e| e.text.clone()).collect::<Vec<_>>();
    assert_eq!(text(&first), ["entry 6", "entry 5", "entry 4"]);
    let second = page(None, None, first.next_before, 3);
    assert_eq!(text(&second), ["entry 3", "entry 2", "entry 1"]);
    let last = page(None, None, second.next_before, 3);
    assert_eq!(
        (text(&last), last.next_before),
        (vec!["entry 0".to_string()], None)
    );
    assert_eq!(
        text(&page(Some(EntryKind::Note), None, None, 10)),
        ["entry 5", "entry 3", "entry 1"]
    );
    assert_eq!(text(&page(None, Some("agent-2"), None, 10)), ["entry 3"]);
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_narrow_a_recall_and_ties_go_to_the_newest() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |_| {}).await;
    let memory = swarm.memory().clone();
    let mut a = new(
        EntryKind::Decision,
        "deploy freeze over the holidays",
        &["release"],
    );
    a.links.tasks.push(dreamos_runtime::task::TaskId(7));
    let a = memory.remember(a).await.expect("test step");
    // Time filters work in milliseconds: each entry gets a millisecond of its own.
    next_millisecond(a.at()).await;
    let mut b = new(
        EntryKind::Note,
        "deploy freeze over the holidays",
        &["release", "ops"],
    );
    b.author = Author::Agent("agent-3".into());
    let b = memory.remember(b).await.expect("test step");
    next_millisecond(b.at()).await;
    let c = memory
        .remember(new(
            EntryKind::Note,
            "deploy freeze over the holidays",
            &["release"],
        ))
        .await
        .expect("test step");
    // The ids a recall of "deploy freeze" returns with `filters`, best first.
    let recall = |filters: Filters| {
        let memory = memory.clone();
        async move {
            let found = memory
                .recall(RecallQuery {
                    filters,
                    ..words("deploy freeze", 10)
                })
                .await
                .expect("recall");
            found
                .hits
                .into_iter()
                .map(|h| h.entry.id)
                .collect::<Vec<_>>()
        }
    };
    let none = Filters::default;
    // Same text, same score: the newest first.
    assert_eq!(recall(none()).await, [c.id, b.id, a.id]);
    let cases: Vec<(Filters, Vec<EntryId>)> = vec![
        (
            Filters {
                kind: Some("decision".into()),
                ..none()
            },
            vec![a.id],
        ),
        (
            Filters {
                agent: Some("agent-3".into()),
                ..none()
            },
            vec![b.id],
        ),
        (
            Filters {
                author: Some("console:console".into()),
                ..none()
            },
            vec![c.id, a.id],
        ),
        (
            Filters {
                tags: vec!["release".into(), "ops".into()],
                ..none()
            },
            vec![b.id],
        ),
        (
            Filters {
                task: Some(7),
                ..none()
            },
            vec![a.id],
        ),
        (
            Filters {
                until: Some(b.at()),
                ..none()
            },
            vec![a.id],
        ),
        (
            Filters {
                since: Some(Millis(c.at().0 + 1)),
                ..none()
            },
            vec![],
        ),
    ];
    for (filters, expected) in cases {
        let shown = format!("{filters:?}");
        assert_eq!(recall(filters).await, expected, "{shown}");
    }
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_rebuilt_from_sled_when_deleted_or_corrupt_and_catches_up_when_behind() {
    let dir = tempfile::tempdir().expect("test step");
    let fixture = Fixture::load();
    let queries: Vec<&str> = fixture
        .queries
        .iter()
        .take(10)
        .map(|q| q.query.as_str())
        .collect();
    let swarm = swarm_in(dir.path(), |_| {}).await;
    fixture.write(swarm.memory()).await;
    let mut before = Vec::new();
    for q in &queries {
        before.push(texts(swarm.memory(), words(q, 5)).await);
    }
    swarm.shutdown(Duration::from_secs(5)).await;
    drop(swarm);
    let index_dir = dir.path().join("data").join(MEMORY_INDEX_DIR);

    // Deleted.
    std::fs::remove_dir_all(&index_dir).expect("test step");
    let swarm = swarm_in(dir.path(), |_| {}).await;
    let opened = swarm.memory().stats().index_open;
    assert!(opened.rebuilt.is_some(), "{opened:?}");
    assert_eq!(opened.entries, fixture.entries.len() as u64);
    for (q, expected) in queries.iter().zip(&before) {
        assert_eq!(&texts(swarm.memory(), words(q, 5)).await, expected, "{q}");
    }
    swarm.shutdown(Duration::from_secs(5)).await;
    drop(swarm);

    // Corrupt: garbage in its meta file, and a segment file cut short.
    std::fs::write(index_dir.join("meta.json"), b"{ not json").expect("test step");
    let swarm = swarm_in(dir.path(), |_| {}).await;
    assert!(swarm.memory().stats().index_open.rebuilt.is_some());
    for (q, expected) in queries.iter().zip(&before) {
        assert_eq!(&texts(swarm.memory(), words(q, 5)).await, expected, "{q}");
    }
    swarm.shutdown(Duration::from_secs(5)).await;
    drop(swarm);
    let segment = std::fs::read_dir(&index_dir)
        .expect("test step")
        .map(|e| e.expect("test step").path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .expect("a segment file");
    let len = std::fs::metadata(&segment).expect("test step").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("test step")
        .set_len(len / 2)
        .expect("test step");
    let swarm = swarm_in(dir.path(), |_| {}).await;
    assert!(swarm.memory().stats().index_open.rebuilt.is_some());
    for (q, expected) in queries.iter().zip(&before) {
        assert_eq!(&texts(swarm.memory(), words(q, 5)).await, expected, "{q}");
    }
    swarm.shutdown(Duration::from_secs(5)).await;
    drop(swarm);

    // Behind: entries in sled the index never saw (as after a crash before its commit), and one removed.
    {
        let store = Store::open(&dir.path().join("data")).expect("test step");
        let trees = MemoryStore::open(&store).expect("test step");
        let first = trees.oldest_ids(1).expect("test step");
        trees
            .remove(&first, trees.last_gone_seq().expect("test step") + 1)
            .expect("test step");
        let last = trees.last_id().expect("test step").expect("test step");
        trees
            .insert(&Entry {
                id: EntryId(last.0.increment().expect("test step")),
                author: person(),
                kind: EntryKind::Fact,
                text: "the zebra migration finished overnight".into(),
                tags: vec![],
                links: Links::default(),
            })
            .expect("test step");
        store.flush().expect("test step");
    }
    let swarm = swarm_in(dir.path(), |_| {}).await;
    let opened = swarm.memory().stats().index_open;
    assert_eq!(
        (opened.rebuilt.clone(), opened.caught_up),
        (None, 2),
        "{opened:?}"
    );
    assert_eq!(opened.entries, fixture.entries.len() as u64);
    assert_eq!(
        texts(swarm.memory(), words("zebra", 5)).await,
        ["the zebra migration finished overnight"]
    );
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_the_oldest_entries_from_sled_and_the_index() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |c| {
        c.retention.memory_max = 10;
        c.retention.compact_every = Duration::from_millis(50);
    })
    .await;
    let memory = swarm.memory().clone();
    for i in 0..25 {
        memory
            .remember(new(
                EntryKind::Note,
                &format!("retained entry number{i}"),
                &[],
            ))
            .await
            .expect("test step");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // Removed from sled first; the index follows within its commit period.
    while memory.stats().removed < 15 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention did not run"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hits = memory
        .recall(words("retained entry", 50))
        .await
        .expect("test step");
    let mut left: Vec<String> = hits.hits.iter().map(|h| h.entry.text.clone()).collect();
    left.sort();
    let mut expected: Vec<String> = (15..25)
        .map(|i| format!("retained entry number{i}"))
        .collect();
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(memory.index().num_docs(), 10);
    swarm.shutdown(Duration::from_secs(5)).await;
}

/// The relevance fixture: entries and queries written for them (paraphrases, partial words, tags, exact
/// phrases), each query with the one entry a person would call its answer.
#[derive(serde::Deserialize)]
struct Fixture {
    entries: Vec<FixtureEntry>,
    queries: Vec<FixtureQuery>,
}

#[derive(serde::Deserialize)]
struct FixtureEntry {
    key: String,
    kind: String,
    author: String,
    tags: Vec<String>,
    text: String,
}

#[derive(serde::Deserialize)]
struct FixtureQuery {
    query: String,
    expect: String,
    #[serde(rename = "type")]
    kind: String,
}

impl Fixture {
    fn load() -> Fixture {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recall.json");
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture"))
            .expect("fixture JSON")
    }

    /// Writes every entry (in order, so that ids follow the file) and returns the text of each key.
    async fn write(&self, memory: &Memory) -> std::collections::HashMap<String, String> {
        let mut keys = std::collections::HashMap::new();
        for e in &self.entries {
            let author = match e.author.as_str() {
                "swarm" => Author::Swarm,
                a if a.starts_with("user:") => Author::Person {
                    frontend: "discord".into(),
                    user: a[5..].into(),
                    name: a[5..].into(),
                },
                a => Author::Agent(a.into()),
            };
            let entry = memory
                .remember(NewEntry {
                    author,
                    kind: e.kind.parse().expect("kind"),
                    text: e.text.clone(),
                    tags: e.tags.clone(),
                    links: Links::default(),
                })
                .await
                .expect("remember");
            keys.insert(e.key.clone(), entry.text);
        }
        keys
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_finds_the_expected_entry_in_the_top_3_for_at_least_90_percent_of_the_queries() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |_| {}).await;
    let fixture = Fixture::load();
    assert!(fixture.entries.len() >= 200 && fixture.queries.len() >= 30);
    let keys = fixture.write(swarm.memory()).await;
    let mut by_type: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    let mut misses = Vec::new();
    let mut found = 0;
    for q in &fixture.queries {
        let top = texts(swarm.memory(), words(&q.query, 3)).await;
        let hit = top.contains(&keys[&q.expect]);
        let slot = by_type.entry(q.kind.as_str()).or_default();
        slot.1 += 1;
        if hit {
            slot.0 += 1;
            found += 1;
        } else {
            misses.push(format!(
                "{} ({}) -> wanted {}: got {:?}",
                q.query, q.kind, keys[&q.expect], top
            ));
        }
    }
    let rate = found as f64 / fixture.queries.len() as f64;
    println!(
        "recall@3: {found}/{} = {:.1} % over {} entries; by type: {by_type:?}",
        fixture.queries.len(),
        rate * 100.0,
        fixture.entries.len()
    );
    for miss in &misses {
        println!("miss: {miss}");
    }
    assert!(
        rate >= 0.9,
        "recall@3 is {:.1} %:\n{}",
        rate * 100.0,
        misses.join("\n")
    );
    swarm.shutdown(Duration::from_secs(5)).await;
}

// The automatic journal: one test per kind of entry.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_records_agents_started_stopped_paused_resumed_and_restarted() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |c| {
        c.memory.journal = vec![JournalTopic::Agents]
    })
    .await;
    let memory = swarm.memory().clone();
    journal_until(&memory, "agents started with the swarm", |e| {
        (1..=4).all(|i| {
            has(
                e,
                "started",
                &format!("agent-{i} started by the swarm at start"),
            )
        })
    })
    .await;
    swarm
        .stop_agent(&captain(), "agent-2")
        .await
        .expect("test step");
    swarm
        .restart_agent(&captain(), "agent-3")
        .await
        .expect("test step");
    swarm
        .spawn_agent(&captain(), "agent-9", None, None)
        .await
        .expect("test step");
    let phone = swarm.captain_phone(&captain()).expect("test step");
    phone
        .control(
            Address::agent(&AgentName::new("agent-1").expect("test step")),
            crate::ControlVerb::Pause,
        )
        .await
        .expect("test step");
    phone
        .control(
            Address::agent(&AgentName::new("agent-1").expect("test step")),
            crate::ControlVerb::Resume,
        )
        .await
        .expect("test step");
    let entries = journal_until(&memory, "each change", |e| {
        has(e, "stopped", "agent-2 stopped by user:console")
            && has(e, "restarted", "agent-3 restarted by user:console")
            && has(e, "started", "agent-9 started by user:console")
            && has(e, "paused", "agent-1 paused by user:console")
            && has(e, "resumed", "agent-1 resumed by user:console")
    })
    .await;
    let stopped = entries
        .iter()
        .find(|e| e.text.contains("agent-2 stopped"))
        .expect("test step");
    assert_eq!(
        (stopped.kind, &stopped.links.agents[..]),
        (EntryKind::Event, &["agent-2".to_string()][..])
    );
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_records_a_crash_restart_and_an_agent_marked_failed() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |c| {
        c.memory.journal = vec![JournalTopic::Agents];
        c.debug.fault_skill = true;
        c.supervisor.max_restarts = 1;
        c.supervisor.backoff_initial = Duration::from_millis(10);
        c.supervisor.backoff_max = Duration::from_millis(20);
        c.messages.max_attempts = 10;
    })
    .await;
    let memory = swarm.memory().clone();
    let phone = swarm.cell_phone(&captain());
    let agent = Address::agent(&AgentName::new("agent-1").expect("test step"));
    phone
        .send(
            agent.clone(),
            "fault",
            Body::text("panic"),
            Priority::Normal,
        )
        .await
        .expect("test step");
    journal_until(&memory, "the supervisor's restart", |e| {
        has(
            e,
            "restarted",
            "agent-1 crashed and was restarted by its supervisor",
        )
    })
    .await;
    // The same message crashes it again: past max_restarts it is marked failed.
    journal_until(&memory, "agent-1 marked failed", |e| {
        has(e, "failed", "agent-1 was marked failed")
    })
    .await;
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_records_a_broadcast_with_its_acknowledgements() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |c| {
        c.memory.journal = vec![JournalTopic::Broadcasts]
    })
    .await;
    let memory = swarm.memory().clone();
    swarm
        .stop_agent(&captain(), "agent-4")
        .await
        .expect("test step");
    let sent = swarm
        .captain_phone(&captain())
        .expect("test step")
        .broadcast(Address::All, "freeze deploys until noon", Priority::Urgent)
        .await
        .expect("test step");
    let entries = journal_until(&memory, "the broadcast", |e| {
        has(e, "broadcast", "freeze deploys")
    })
    .await;
    let entry = entries
        .iter()
        .find(|e| e.text.contains("freeze deploys"))
        .expect("test step");
    let n = sent.recipients.len();
    assert!(
        entry
            .text
            .contains(&format!("({n} agents): all {n} acknowledged")),
        "{}",
        entry.text
    );
    assert_eq!(entry.links.messages, [sent.id]);
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_records_a_dead_letter_and_why() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |c| {
        c.memory.journal = vec![JournalTopic::DeadLetters];
        c.debug.fault_skill = true;
        c.messages.max_attempts = 1;
    })
    .await;
    let memory = swarm.memory().clone();
    let sent = swarm
        .cell_phone(&captain())
        .send(
            Address::agent(&AgentName::new("agent-2").expect("test step")),
            "fault",
            Body::text("fail"),
            Priority::Normal,
        )
        .await
        .expect("test step");
    let entries = journal_until(&memory, "the dead letter", |e| {
        has(e, "dead_letter", "agent-2")
    })
    .await;
    let entry = entries
        .iter()
        .find(|e| e.tags.contains(&"dead_letter".to_string()))
        .expect("test step");
    assert!(
        entry.text.contains("went to dead letters after 1 attempt: skill `fault` failed: fault skill: failing on request"),
        "{}",
        entry.text
    );
    assert!(entry.links.messages.contains(&sent.id));
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_records_an_indexing_run() {
    let dir = tempfile::tempdir().expect("test step");
    let repo = dir.path().join("tinyrepo");
    std::fs::create_dir_all(repo.join("src")).expect("test step");
    std::fs::write(repo.join("src/lib.rs"), "pub fn answer() -> u32 { 42 }\n").expect("test step");
    let swarm = swarm_in(dir.path(), |c| {
        c.memory.journal = vec![JournalTopic::Indexing]
    })
    .await;
    let memory = swarm.memory().clone();
    let task = swarm
        .tasks()
        .create(TaskSpec::new(
            "scan",
            json!({ "text": repo.to_str().expect("test step") }),
            1,
            Origin::new("console", "console"),
        ))
        .await
        .expect("test step");
    let entries = journal_until(&memory, "the indexing run", |e| {
        has(e, "indexing", "indexed tinyrepo: 1 files")
    })
    .await;
    let entry = &entries[0];
    assert!(entry.text.contains("1 added"), "{}", entry.text);
    assert_eq!(entry.links.tasks, [task.id]);
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_records_tasks_created_done_failed_and_cancelled() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |c| {
        c.memory.journal = vec![JournalTopic::Tasks];
        c.debug.fault_skill = true;
    })
    .await;
    let memory = swarm.memory().clone();
    let tasks = swarm.tasks();
    let origin = || Origin::new("console", "console");
    let done = tasks
        .create(TaskSpec::new("ping", json!({"text": "hello"}), 1, origin()))
        .await
        .expect("test step");
    let failed = tasks
        .create(TaskSpec::new("fault", json!({"text": "fail"}), 1, origin()))
        .await
        .expect("test step");
    let mut waiting = TaskSpec::new("ping", json!({"text": "later"}), 1, origin());
    waiting.approve = true;
    let cancelled = tasks.create(waiting).await.expect("test step");
    tasks
        .control(cancelled.id, crate::tasks::Control::Cancel)
        .await
        .expect("test step");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tasks.get(failed.id).await.expect("test step").status != TaskStatus::Failed {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let entries = journal_until(&memory, "each task's life", |e| {
        has(
            e,
            "created",
            &format!("task {} (ping) created by console", done.id),
        ) && has(
            e,
            "created",
            &format!(
                "task {} (ping) created by console, waiting for a captain's approval",
                cancelled.id
            ),
        ) && has(
            e,
            "done",
            &format!("task {} (ping) done on agent-", done.id),
        ) && has(
            e,
            "failed",
            &format!("task {} (fault) failed on agent-", failed.id),
        ) && has(
            e,
            "cancelled",
            &format!("task {} (ping) cancelled", cancelled.id),
        )
    })
    .await;
    let failure = entries
        .iter()
        .find(|e| e.tags.contains(&"failed".to_string()))
        .expect("test step");
    assert!(
        failure
            .text
            .contains("after 1 attempt: fault skill: failing on request"),
        "{}",
        failure.text
    );
    assert_eq!(failure.links.tasks, [failed.id]);
    swarm.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_remember_and_recall_through_their_skills() {
    let dir = tempfile::tempdir().expect("test step");
    let swarm = swarm_in(dir.path(), |_| {}).await;
    let phone = swarm.cell_phone(&captain());
    let agent = Address::agent(&AgentName::new("agent-1").expect("test step"));
    let mut events = swarm.subscribe();
    let sent = phone
        .send(
            agent.clone(),
            "remember",
            Body::from_value(&json!({"text": "the billing webhook retries three times", "kind": "fact", "tags": ["billing"]})),
            Priority::Normal,
        )
        .await
        .expect("test step");
    let reply = wait_reply(&mut events, sent.id).await;
    assert!(
        reply["text"]
            .as_str()
            .expect("test step")
            .starts_with("remembered as "),
        "{reply}"
    );
    let entry = &reply["entry"];
    assert_eq!(entry["author"]["Agent"], "agent-1");
    let sent = phone
        .send(
            agent,
            "recall",
            Body::text("webhook retry"),
            Priority::Normal,
        )
        .await
        .expect("test step");
    let reply = wait_reply(&mut events, sent.id).await;
    assert_eq!(reply["matched"], 1, "{reply}");
    assert_eq!(
        reply["hits"][0]["entry"]["text"],
        "the billing webhook retries three times"
    );
    let stored = swarm
        .memory()
        .journal(&JournalQuery {
            limit: 1,
            ..JournalQuery::default()
        })
        .expect("test step");
    assert_eq!(stored.entries[0].kind, EntryKind::Fact);
    assert_eq!(
        stored.entries[0].links.messages.len(),
        1,
        "linked to the message it handled"
    );
    swarm.shutdown(Duration::from_secs(5)).await;
}

async fn wait_reply(
    events: &mut crate::events::EventReceiver,
    id: dreamos_runtime::message::MessageId,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("a reply in time");
        if let Ok(crate::SwarmEvent::Message(m)) = event {
            if m.envelope.reply_to == Some(id) {
                return serde_json::from_str(m.envelope.body.as_json()).expect("test step");
            }
        }
    }
}
