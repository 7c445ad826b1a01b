//! Tests of the message log against a real sled database in a temporary directory.

use std::{sync::Arc, time::Duration};

use parking_lot::Mutex;

use super::*;
use crate::{
    config::Config,
    message::{Address, Body, Channel, Priority},
};

#[derive(Default)]
struct Collect {
    messages: Mutex<Vec<Arc<StoredMessage>>>,
    resolutions: Mutex<Vec<Resolution>>,
}

impl CommitSink for Collect {
    fn committed(&self, batch: &Committed) {
        self.messages.lock().extend(batch.messages.iter().cloned());
        self.resolutions
            .lock()
            .extend(batch.resolutions.iter().cloned());
    }
}

struct Harness {
    _dir: Option<tempfile::TempDir>,
    path: std::path::PathBuf,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        Harness {
            path: dir.path().to_path_buf(),
            _dir: Some(dir),
        }
    }

    fn open_with(&self, options: LogOptions) -> (MessageLog, Recovery, Arc<Collect>) {
        let store = Store::open(&self.path).expect("open store");
        let (log, recovery) = MessageLog::open(&store, options).expect("open log");
        let sink = Arc::new(Collect::default());
        log.start(sink.clone()).expect("start");
        (log, recovery, sink)
    }

    fn open(&self) -> (MessageLog, Recovery, Arc<Collect>) {
        let config = Config::defaults();
        self.open_with(LogOptions::new(&config.store, &config.retention))
    }
}

fn agent(name: &str) -> AgentName {
    AgentName::new(name).expect("agent name")
}

fn to_agent(name: &str, text: &str) -> StoredMessage {
    StoredMessage {
        envelope: Envelope::new(
            Address::user("console"),
            Address::agent(&agent(name)),
            "ping",
            Body::text(text),
        ),
        recipients: vec![agent(name)],
    }
}

fn handled(seq: Seq, name: &str) -> Resolution {
    Resolution {
        seq,
        agent: agent(name),
        outcome: Outcome::Handled,
    }
}

/// Waits (bounded) until the sink has seen `n` resolutions: resolve() returns before the commit. The sink is
/// told on a task of this runtime, so the wait yields to it.
async fn wait_resolutions(sink: &Collect, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sink.resolutions.lock().len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "resolutions not committed"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn accepted_messages_survive_reopen_and_are_redelivered_until_handled() {
    let h = Harness::new();
    let (log, recovery, sink) = h.open();
    assert!(recovery.redeliveries.is_empty());
    let a = log
        .append(vec![to_agent("agent-1", "one"), to_agent("agent-2", "two")])
        .await
        .expect("append");
    assert_eq!(
        a.iter().map(|x| x.seq.0).collect::<Vec<_>>(),
        [1, 2],
        "sequence numbers start at 1 and follow acceptance order"
    );
    assert_eq!(sink.messages.lock().len(), 2);
    log.resolve(handled(a[0].seq, "agent-1"), vec![])
        .await
        .expect("resolve");
    wait_resolutions(&sink, 1).await;
    log.close().await;
    drop(log);

    let (log, recovery, _) = h.open();
    let pending: Vec<_> = recovery
        .redeliveries
        .iter()
        .map(|r| (r.message.envelope.id, r.agent.to_string()))
        .collect();
    assert_eq!(pending, [(a[1].id, "agent-2".to_string())]);
    assert_eq!(log.stats().last_seq, 2);
    // Numbering continues after a restart.
    let b = log
        .append(vec![to_agent("agent-1", "three")])
        .await
        .expect("append");
    assert_eq!(b[0].seq.0, 3);
    log.close().await;
}

#[tokio::test]
async fn a_reply_is_committed_with_the_acknowledgement_it_belongs_to() {
    let h = Harness::new();
    let (log, _, sink) = h.open();
    let a = log
        .append(vec![to_agent("agent-1", "hello")])
        .await
        .expect("append");
    let mut reply = StoredMessage {
        envelope: Envelope::new(
            Address::agent(&agent("agent-1")),
            Address::user("console"),
            "ping",
            Body::text("pong"),
        )
        .with_reply_to(a[0].id),
        recipients: vec![],
    };
    reply.envelope.channel = Channel::Cell;
    log.resolve(handled(a[0].seq, "agent-1"), vec![reply])
        .await
        .expect("resolve");
    wait_resolutions(&sink, 1).await;
    // The reply got the next sequence number in the same group as the acknowledgement.
    let messages = sink.messages.lock().clone();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].envelope.reply_to, Some(a[0].id));
    assert_eq!(messages[1].envelope.seq.0, 2);
    log.close().await;
    drop(log);

    let (log, recovery, _) = h.open();
    assert!(recovery.redeliveries.is_empty());
    let page = log.history(&HistoryQuery::default()).expect("history");
    let kinds: Vec<_> = page
        .entries
        .iter()
        .map(|e| (e.message.envelope.seq.0, e.receipts.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (2, vec![]),
            (
                1,
                vec![Receipt {
                    agent: agent("agent-1"),
                    status: ReceiptStatus::Handled
                }]
            )
        ]
    );
    log.close().await;
}

#[tokio::test]
async fn failures_count_attempts_across_restarts_and_dead_letters_are_kept() {
    let h = Harness::new();
    let (log, _, sink) = h.open();
    let a = log
        .append(vec![to_agent("agent-1", "poison")])
        .await
        .expect("append");
    let seq = a[0].seq;
    for attempt in 1..=2 {
        log.resolve(
            Resolution {
                seq,
                agent: agent("agent-1"),
                outcome: Outcome::Failed {
                    attempt,
                    error: "boom".into(),
                },
            },
            vec![],
        )
        .await
        .expect("resolve");
    }
    wait_resolutions(&sink, 2).await;
    log.close().await;
    drop(log);

    let (log, recovery, sink) = h.open();
    assert_eq!(recovery.redeliveries.len(), 1);
    assert_eq!(recovery.redeliveries[0].attempts, 2);
    let message = recovery.redeliveries[0].message.clone();
    log.resolve(
        Resolution {
            seq,
            agent: agent("agent-1"),
            outcome: Outcome::Dead {
                attempts: 3,
                error: "boom".into(),
                message,
            },
        },
        vec![],
    )
    .await
    .expect("resolve");
    wait_resolutions(&sink, 1).await;
    let letters = log.dead_letters(10, None).expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(letters[0].message.envelope.id, a[0].id);
    let page = log.history(&HistoryQuery::default()).expect("history");
    assert_eq!(page.entries[0].receipts[0].status, ReceiptStatus::Dead);
    assert_eq!(log.stats().dead_letters, 1);
    log.close().await;
    drop(log);
    let (log, recovery, _) = h.open();
    assert!(
        recovery.redeliveries.is_empty(),
        "a dead letter is resolved"
    );
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_share_flushes_and_get_unique_ordered_seqs() {
    let h = Harness::new();
    let (log, _, _) = h.open();
    let mut tasks = Vec::new();
    for sender in 0..64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..50 {
                let a = log
                    .append(vec![to_agent("agent-1", &format!("{sender}-{i}"))])
                    .await
                    .expect("append");
                seqs.push(a[0].seq.0);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.expect("task");
        // Each sender's messages are accepted in the order it sent them.
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=3200).collect::<Vec<u64>>());
    let groups = log.inner.state.lock().groups.len();
    assert!(
        groups < 3200,
        "group commit must put several messages in one flush ({groups} groups)"
    );
    log.close().await;
}

#[tokio::test]
async fn history_filters_and_pages() {
    let h = Harness::new();
    let (log, _, _) = h.open();
    let mut urgent = to_agent("agent-2", "captain says hi");
    urgent.envelope.channel = Channel::Captain;
    urgent.envelope.priority = Priority::Urgent;
    urgent.envelope.kind = Arc::from("order");
    log.append(vec![to_agent("agent-1", "Alpha"), urgent])
        .await
        .expect("append");
    for i in 0..5 {
        log.append(vec![to_agent("agent-1", &format!("note {i}"))])
            .await
            .expect("append");
    }
    let check = |query: HistoryQuery, expected: &[u64]| {
        let page = log.history(&query).expect("history");
        let seqs: Vec<_> = page
            .entries
            .iter()
            .map(|e| e.message.envelope.seq.0)
            .collect();
        assert_eq!(seqs, expected, "{query:?}");
    };
    check(HistoryQuery::default(), &[7, 6, 5, 4, 3, 2, 1]);
    check(
        HistoryQuery {
            agent: Some(agent("agent-2")),
            ..Default::default()
        },
        &[2],
    );
    check(
        HistoryQuery {
            channel: Some(Channel::Captain),
            ..Default::default()
        },
        &[2],
    );
    check(
        HistoryQuery {
            kind: Some("ping".into()),
            text: Some("alpha".into()),
            ..Default::default()
        },
        &[1],
    );
    check(
        HistoryQuery {
            since: Some(Millis::now().saturating_sub(Duration::from_secs(3600))),
            until: Some(Millis(1)),
            ..Default::default()
        },
        &[],
    );
    // Pages of 3, following next_before.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = log
            .history(&HistoryQuery {
                limit: 3,
                before,
                ..Default::default()
            })
            .expect("history");
        seen.extend(page.entries.iter().map(|e| e.message.envelope.seq.0));
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, [7, 6, 5, 4, 3, 2, 1]);
    log.close().await;
}

#[tokio::test]
async fn compaction_keeps_unresolved_messages_and_the_newest_group() {
    let h = Harness::new();
    let options = LogOptions {
        max_batch: 1024,
        retention_max_messages: 2,
        retention_max_age: Duration::from_secs(3600),
        compact_every: Duration::from_secs(3600),
    };
    let (log, _, sink) = h.open_with(options.clone());
    let mut seqs = Vec::new();
    for i in 0..6 {
        let a = log
            .append(vec![to_agent("agent-1", &format!("m{i}"))])
            .await
            .expect("append");
        seqs.push(a[0].seq);
    }
    // m0 stays unresolved; m1..m5 are handled.
    for seq in &seqs[1..] {
        log.resolve(handled(*seq, "agent-1"), vec![])
            .await
            .expect("resolve");
    }
    wait_resolutions(&sink, 5).await;
    assert_eq!(log.compact().expect("compact"), 0, "m0 pins the prefix");
    log.resolve(handled(seqs[0], "agent-1"), vec![])
        .await
        .expect("resolve");
    wait_resolutions(&sink, 6).await;
    let removed = log.compact().expect("compact");
    assert_eq!(removed, 4, "down to the newest 2 messages");
    let page = log.history(&HistoryQuery::default()).expect("history");
    assert_eq!(page.entries.len(), 2);
    // Age-based: everything older than the cutoff goes, but the newest group (here the one holding the last
    // acknowledgement) stays.
    let removed = log
        .compact_at(Millis(Millis::now().0 + 7_200_000))
        .expect("compact");
    assert_eq!(removed, 2);
    assert!(log
        .history(&HistoryQuery::default())
        .expect("history")
        .entries
        .is_empty());
    log.close().await;
    drop(log);
    let (log, recovery, _) = h.open_with(options);
    assert!(recovery.redeliveries.is_empty());
    let a = log
        .append(vec![to_agent("agent-1", "after")])
        .await
        .expect("append");
    assert_eq!(a[0].seq.0, 7, "numbering survives compaction and restart");
    log.close().await;
}

#[tokio::test]
async fn appends_after_close_are_refused() {
    let h = Harness::new();
    let (log, _, _) = h.open();
    log.close().await;
    let err = log
        .append(vec![to_agent("agent-1", "late")])
        .await
        .expect_err("closed");
    assert!(matches!(err, Error::Closed), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sender_gets_its_own_messages_back_when_groups_mix_appends_and_replies() {
    let h = Harness::new();
    let (log, _, _) = h.open();
    let first = log
        .append(vec![to_agent("agent-1", "seed")])
        .await
        .expect("append");
    let mut tasks = Vec::new();
    for sender in 0..16 {
        let log = log.clone();
        let seed = first[0].seq;
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                // Handlers' outputs land in the same groups as appends.
                let mut reply = to_agent("agent-2", "reply");
                reply.recipients.clear();
                log.resolve(
                    Resolution {
                        seq: seed,
                        agent: agent("agent-9"),
                        outcome: Outcome::Handled,
                    },
                    vec![reply],
                )
                .await
                .expect("resolve");
                let messages = vec![
                    to_agent("agent-1", &format!("{sender}-{i}-a")),
                    to_agent("agent-1", &format!("{sender}-{i}-b")),
                ];
                let ids: Vec<_> = messages.iter().map(|m| m.envelope.id).collect();
                let accepted = log.append(messages).await.expect("append");
                let got: Vec<_> = accepted.iter().map(|a| a.id).collect();
                assert_eq!(got, ids, "a sender must get back the ids it sent");
                assert_eq!(accepted[1].seq.0, accepted[0].seq.0 + 1);
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    log.close().await;
}
