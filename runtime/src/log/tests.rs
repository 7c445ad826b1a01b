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
    /// Messages per commit, in commit order.
    commits: Mutex<Vec<usize>>,
    failures: Mutex<Vec<String>>,
}

impl CommitSink for Collect {
    fn committed(&self, batch: &Committed) {
        self.messages.lock().extend(batch.messages.iter().cloned());
        self.resolutions
            .lock()
            .extend(batch.resolutions.iter().cloned());
        self.commits.lock().push(batch.messages.len());
    }

    fn failed(&self, error: &str) {
        self.failures.lock().push(error.to_string());
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
        let (log, recovery) = self.open_unstarted(options);
        let sink = Arc::new(Collect::default());
        log.start(sink.clone()).expect("start");
        (log, recovery, sink)
    }

    /// Opens the log without starting its writer: submissions wait in its queue.
    fn open_unstarted(&self, options: LogOptions) -> (MessageLog, Recovery) {
        let store = Store::open(&self.path).expect("open store");
        MessageLog::open(&store, options).expect("open log")
    }

    fn open(&self) -> (MessageLog, Recovery, Arc<Collect>) {
        let config = Config::defaults();
        self.open_with(LogOptions::new(
            &config.store,
            &config.messages,
            &config.retention,
        ))
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
async fn compaction_carries_unresolved_messages_forward_and_keeps_the_newest_group() {
    let h = Harness::new();
    let options = LogOptions {
        max_batch: 1024,
        retention_max_messages: 2,
        retention_max_age: Duration::from_secs(3600),
        compact_every: Duration::from_secs(3600),
        ..LogOptions::defaults()
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
    // m0 stays unresolved (one failed attempt); m1..m5 are handled.
    log.resolve(
        Resolution {
            seq: seqs[0],
            agent: agent("agent-1"),
            outcome: Outcome::Failed {
                attempt: 1,
                error: "not yet".into(),
            },
        },
        vec![],
    )
    .expect("resolve");
    for seq in &seqs[1..] {
        log.resolve(handled(*seq, "agent-1"), vec![])
            .expect("resolve");
    }
    wait_resolutions(&sink, 6).await;
    log.barrier().await.expect("barrier");
    let done = log.compact().expect("compact");
    assert_eq!(
        done.messages, 4,
        "down to the newest 2 messages, m0 or not: {done:?}"
    );
    assert_eq!(done.carried, 1, "m0 is carried forward: {done:?}");
    let page = log.history(&HistoryQuery::default()).expect("history");
    let texts: Vec<_> = page
        .entries
        .iter()
        .map(|e| e.message.envelope.body.text_field().unwrap_or_default())
        .collect();
    assert_eq!(
        texts,
        ["m5", "m4", "m0"],
        "history shows the stuck message, in order"
    );
    assert_eq!(
        page.entries[2].receipts[0].status,
        ReceiptStatus::Pending { attempts: 1 }
    );
    assert_eq!(log.stats().retained, 3);
    log.close().await;
    drop(log);

    // After a restart the stuck message is delivered again, with its attempt count.
    let (log, recovery, sink) = h.open_with(options.clone());
    let pending: Vec<_> = recovery
        .redeliveries
        .iter()
        .map(|r| (r.message.envelope.seq, r.attempts))
        .collect();
    assert_eq!(pending, [(seqs[0], 1)]);
    // Age-based: everything older than the cutoff goes, but the newest group stays; m0 is still carried.
    let done = log
        .compact_at(Millis(Millis::now().0 + 7_200_000))
        .expect("compact");
    assert!(done.groups >= 1, "{done:?}");
    let texts: Vec<_> = log
        .history(&HistoryQuery::default())
        .expect("history")
        .entries
        .iter()
        .map(|e| e.message.envelope.body.text_field().unwrap_or_default())
        .collect();
    assert_eq!(texts, ["m0"]);
    // Once handled, a carried message is released at the next compaction.
    log.resolve(handled(seqs[0], "agent-1"), vec![])
        .expect("resolve");
    wait_resolutions(&sink, 1).await;
    let done = log.compact().expect("compact");
    assert_eq!(done.released, 1, "{done:?}");
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

fn to_user(text: &str) -> StoredMessage {
    StoredMessage {
        envelope: Envelope::new(
            Address::agent(&agent("agent-1")),
            Address::user("console"),
            "reply",
            Body::text(text),
        ),
        recipients: vec![],
    }
}

fn texts(page: &HistoryPage) -> Vec<String> {
    page.entries
        .iter()
        .map(|e| e.message.envelope.body.text_field().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_full_write_queue_refuses_appends_and_stores_nothing_of_them() {
    let h = Harness::new();
    let options = LogOptions {
        max_queue_bytes: 8 * 1024,
        max_group_bytes: 2 * 1024,
        ..LogOptions::defaults()
    };
    // The writer is not started yet, so nothing leaves the queue: it fills up.
    let (log, _) = h.open_unstarted(options.clone());
    let mut queued = 0;
    let refused = loop {
        match log.append_detached(vec![to_user(&format!("q{queued}"))]) {
            Ok(()) => queued += 1,
            Err(err) => break err,
        }
        assert!(queued < 1000, "the queue never filled");
    };
    assert!(matches!(refused, Error::Overloaded { .. }), "{refused:?}");
    assert!(
        refused.to_string().contains("max_queue_bytes"),
        "the error names the bound: {refused}"
    );
    assert!(queued >= 20, "only {queued} fitted in 8 KiB");
    let sink = Arc::new(Collect::default());
    log.start(sink.clone()).expect("start");
    log.barrier().await.expect("barrier");
    let page = log
        .history(&HistoryQuery {
            limit: 1000,
            ..HistoryQuery::default()
        })
        .expect("history");
    assert_eq!(page.entries.len(), queued, "what was queued is written");
    assert!(
        !texts(&page).contains(&format!("q{queued}")),
        "the refused one is not"
    );
    // Groups were bounded in bytes: 2 KiB holds about a quarter of them.
    let commits = sink.commits.lock().clone();
    assert!(commits.len() >= 3, "{commits:?}");
    let largest = log
        .inner
        .state
        .lock()
        .groups
        .iter()
        .map(|g| g.messages)
        .max();
    assert!(
        largest.is_some_and(|m| (m as usize) < queued / 2),
        "{commits:?}"
    );
    // Once drained, appends are accepted again.
    log.append(vec![to_user("after")])
        .await
        .expect("accepted again");
    assert_eq!(log.stats().queued_bytes, 0);
    log.close().await;
}

#[tokio::test]
async fn an_attempt_that_never_finished_is_counted_after_a_restart() {
    let h = Harness::new();
    let (log, _, _) = h.open();
    let a = log
        .append(vec![to_agent("agent-1", "kills the process")])
        .await
        .expect("append");
    // The agent records its first attempt durably, then the process dies: no verdict follows.
    log.resolve_durable(
        Resolution {
            seq: a[0].seq,
            agent: agent("agent-1"),
            outcome: Outcome::Started { attempt: 1 },
        },
        vec![],
    )
    .await
    .expect("started");
    log.close().await;
    drop(log);
    let (log, recovery, _) = h.open();
    assert_eq!(recovery.redeliveries.len(), 1);
    assert_eq!(recovery.redeliveries[0].attempts, 1);
    let page = log.history(&HistoryQuery::default()).expect("history");
    assert_eq!(
        page.entries[0].receipts[0].status,
        ReceiptStatus::Pending { attempts: 1 }
    );
    log.close().await;
}

#[tokio::test]
async fn a_failing_store_stops_the_log_and_loses_nothing_acknowledged() {
    let h = Harness::new();
    let (log, _, sink) = h.open();
    let kept = log
        .append(vec![to_agent("agent-1", "kept")])
        .await
        .expect("append");
    log.inner.store.fail_flushes_for_test(true);
    // An acknowledgement and a new message land in a group that cannot be written.
    log.resolve(handled(kept[0].seq, "agent-1"), vec![])
        .expect("queued");
    let err = log
        .append(vec![to_agent("agent-1", "lost")])
        .await
        .expect_err("the store is failing");
    assert!(matches!(err, Error::StoreFailed(_)), "{err:?}");
    // The sink is told on the completer task, which may run after the refusal reached us.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sink.failures.lock().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sink was not told"
        );
        tokio::task::yield_now().await;
    }
    // From now on nothing is accepted, even once the disk is back: the process must restart.
    log.inner.store.fail_flushes_for_test(false);
    let err = log
        .append(vec![to_agent("agent-1", "later")])
        .await
        .expect_err("failed stop");
    assert!(matches!(err, Error::StoreFailed(_)), "{err:?}");
    assert!(log.failure().is_some());
    let durable = log
        .resolve_durable(handled(kept[0].seq, "agent-1"), vec![])
        .await;
    assert!(matches!(durable, Err(Error::StoreFailed(_))), "{durable:?}");
    assert_eq!(sink.failures.lock().len(), 1, "the sink hears once");
    log.close().await;
    drop(log);
    // After the restart nothing acknowledged is lost. What was in the failed group may or may not have reached
    // the disk (sled writes its buffers again when it closes): "kept" is handled or delivered again, and "lost"
    // (never acknowledged) is absent or delivered again, never handled.
    let (log, recovery, _) = h.open();
    let pending: Vec<_> = recovery
        .redeliveries
        .iter()
        .map(|r| r.message.envelope.body.text_field().unwrap_or_default())
        .collect();
    let page = log.history(&HistoryQuery::default()).expect("history");
    for entry in &page.entries {
        let text = entry.message.envelope.body.text_field().unwrap_or_default();
        let handled = entry.receipts.iter().all(Receipt::handled);
        match text.as_str() {
            "kept" => assert!(handled || pending.contains(&text), "{pending:?}"),
            "lost" => assert!(!handled && pending.contains(&text), "{pending:?}"),
            other => panic!("unexpected message {other}"),
        }
    }
    assert!(texts(&page).contains(&"kept".to_string()));
    log.close().await;
}

#[tokio::test]
async fn dead_letters_and_the_audit_log_are_kept_within_their_bounds() {
    let h = Harness::new();
    let options = LogOptions {
        dead_letters_max: 3,
        audit_max_entries: 4,
        ..LogOptions::defaults()
    };
    let (log, _, sink) = h.open_with(options);
    let a = log
        .append(
            (0..5)
                .map(|i| to_agent("agent-1", &format!("d{i}")))
                .collect(),
        )
        .await
        .expect("append");
    for accepted in &a {
        let message = sink
            .messages
            .lock()
            .iter()
            .find(|m| m.envelope.id == accepted.id)
            .cloned()
            .expect("committed");
        log.resolve(
            Resolution {
                seq: accepted.seq,
                agent: agent("agent-1"),
                outcome: Outcome::Dead {
                    attempts: 3,
                    error: "boom".into(),
                    message,
                },
            },
            vec![],
        )
        .expect("resolve");
    }
    wait_resolutions(&sink, 5).await;
    let audit = crate::audit::AuditLog::open(&log.inner.store).expect("audit");
    for i in 0..6 {
        audit
            .record(&crate::audit::AuditEntry {
                at: Millis::now(),
                who: "console".into(),
                role: crate::config::Role::Captain,
                frontend: "console".into(),
                command: format!("/status {i}"),
                outcome: crate::audit::AuditOutcome::Ok,
            })
            .expect("audit");
    }
    let done = log.compact().expect("compact");
    assert_eq!((done.dead_letters, done.audit), (2, 2), "{done:?}");
    let letters: Vec<_> = log
        .dead_letters(10, None)
        .expect("dead letters")
        .iter()
        .map(|d| d.message.envelope.seq.0)
        .collect();
    assert_eq!(letters, [5, 4, 3], "the newest are kept");
    let commands: Vec<_> = audit
        .recent(10)
        .expect("audit")
        .into_iter()
        .map(|e| e.command)
        .collect();
    assert_eq!(
        commands,
        ["/status 5", "/status 4", "/status 3", "/status 2"]
    );
    // Age: everything older than the bound goes.
    let later = Millis(Millis::now().0 + 400 * 24 * 3_600_000);
    let done = log.compact_at(later).expect("compact");
    assert_eq!((done.dead_letters, done.audit), (3, 4), "{done:?}");
    log.close().await;
}

/// One stuck message among a million must not pin the log: retention holds, the store's size on disk stays
/// bounded, and the stuck message is still delivered after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_holds_on_disk_with_a_stuck_message_among_a_million() {
    let total: usize = std::env::var("DREAMOS_RETENTION_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let h = Harness::new();
    let options = LogOptions {
        retention_max_messages: 10_000,
        ..LogOptions::defaults()
    };
    let (log, _, _) = h.open_with(options.clone());
    let stuck = log
        .append(vec![to_agent("agent-1", "stuck")])
        .await
        .expect("append");
    let started = std::time::Instant::now();
    let mut sizes = Vec::new();
    let batch = 1000;
    let mut sent = 1;
    let template: Vec<_> = (0..batch).map(|_| to_user(&"x".repeat(200))).collect();
    while sent < total {
        log.append(template.clone()).await.expect("append");
        sent += batch;
        if sent % 100_000 < batch {
            log.compact().expect("compact");
            sizes.push(log.size_on_disk().expect("size"));
        }
    }
    log.compact().expect("compact");
    let stats = log.stats();
    let size = log.size_on_disk().expect("size");
    eprintln!(
        "retention: {sent} messages in {:.1} s; retained {}; store size every 100k: {:?} MB; final {:.1} MB",
        started.elapsed().as_secs_f64(),
        stats.retained,
        sizes.iter().map(|s| s / 1_000_000).collect::<Vec<_>>(),
        size as f64 / 1e6
    );
    assert!(stats.retained <= 10_000 + batch as u64 + 1, "{stats:?}");
    // 1,000,000 messages of ~300 bytes are ~300 MB of records; retention keeps ~10,000 (3 MB). sled reuses a
    // segment once at most half of it is live, but it rewrites a whole leaf (up to 16 groups) every 10 inserts
    // into it, so its file runs at many times the live data: 100-150 MB here, flat after the first 200,000.
    let bound = 256 * 1024 * 1024;
    assert!(size < bound, "the store grew to {size} bytes");
    if sizes.len() >= 4 {
        let later = &sizes[sizes.len() / 2..];
        let max = later.iter().max().copied().unwrap_or(0);
        assert!(max < bound, "{sizes:?}");
    }
    log.close().await;
    drop(log);
    let (log, recovery, _) = h.open_with(options);
    let pending: Vec<_> = recovery
        .redeliveries
        .iter()
        .map(|r| r.message.envelope.id)
        .collect();
    assert_eq!(
        pending,
        [stuck[0].id],
        "the stuck message is delivered again"
    );
    log.close().await;
}

#[tokio::test]
async fn a_consumer_reads_the_log_in_order_after_its_cursor() {
    let h = Harness::new();
    let (log, _, _) = h.open();
    for i in 0..5 {
        log.append(vec![to_user(&format!("r{i}")), to_user(&format!("s{i}"))])
            .await
            .expect("append");
    }
    let first = log.read_after(Seq(0), 3).expect("read");
    let seqs: Vec<u64> = first.iter().map(|m| m.envelope.seq.0).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let rest = log.read_after(Seq(3), 100).expect("read");
    assert_eq!(rest.first().map(|m| m.envelope.seq.0), Some(4));
    assert_eq!(rest.len(), 7);
    assert!(log.read_after(Seq(10), 100).expect("read").is_empty());
    log.close().await;
}

/// Writes a group the way an earlier version did: a postcard value in a sled tree of its epoch.
fn legacy_group(store: &Store, tree: &str, key: u64, first_seq: u64, messages: &[StoredMessage]) {
    let group = Group {
        first_seq,
        at: Millis::now(),
        records: messages.iter().map(RecordRef::Message).collect(),
    };
    let bytes = postcard::to_allocvec(&group).expect("encode");
    store
        .raw_tree(tree)
        .expect("tree")
        .insert(key.to_be_bytes(), bytes)
        .expect("insert");
    store.flush().expect("flush");
}

fn with_seq(mut message: StoredMessage, seq: u64) -> StoredMessage {
    message.envelope.seq = Seq(seq);
    message
}

#[tokio::test]
async fn a_log_kept_in_sled_by_an_earlier_version_is_moved_into_segment_files() {
    let h = Harness::new();
    {
        let store = Store::open(&h.path).expect("store");
        legacy_group(
            &store,
            "log",
            0,
            1,
            &[with_seq(to_agent("agent-1", "old one"), 1)],
        );
        legacy_group(
            &store,
            "log.0000000000000001",
            1,
            2,
            &[with_seq(to_user("old two"), 2)],
        );
    }
    let (log, recovery, _) = h.open();
    assert_eq!((recovery.groups, recovery.messages), (2, 2));
    assert_eq!(recovery.redeliveries.len(), 1);
    assert_eq!(recovery.redeliveries[0].message.envelope.seq, Seq(1));
    assert!(
        log.inner
            .store
            .tree_names()
            .iter()
            .all(|n| state::epoch_of(n).is_none()),
        "the old trees are dropped"
    );
    assert!(h.path.join("log/0000000000000001.seg").is_file());
    let accepted = log
        .append(vec![to_user("new three")])
        .await
        .expect("append");
    assert_eq!(accepted[0].seq, Seq(3));
    log.close().await;
    drop(log);

    let (log, recovery, _) = h.open();
    assert_eq!((recovery.groups, recovery.messages), (3, 3));
    let page = log.history(&HistoryQuery::default()).expect("history");
    assert_eq!(texts(&page), vec!["new three", "old two", "old one"]);
    log.close().await;
}

#[tokio::test]
async fn an_interrupted_write_at_the_end_of_the_log_is_cut_off_and_the_log_goes_on() {
    let h = Harness::new();
    let (log, _, _) = h.open();
    for text in ["one", "two"] {
        log.append(vec![to_user(text)]).await.expect("append");
    }
    log.close().await;
    drop(log);
    // Half a frame after the last group, as a power cut in the middle of a write leaves it.
    let path = h.path.join("log/0000000000000000.seg");
    let intact = std::fs::metadata(&path).expect("segment").len();
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend_from_slice(&[7, 0, 0, 0, 1, 2]);
    std::fs::write(&path, &bytes).expect("write");

    let (log, recovery, _) = h.open();
    assert_eq!(recovery.messages, 2);
    assert_eq!(std::fs::metadata(&path).expect("segment").len(), intact);
    let accepted = log.append(vec![to_user("three")]).await.expect("append");
    assert_eq!(accepted[0].seq, Seq(3));
    log.close().await;
    drop(log);
    let (log, _, _) = h.open();
    let page = log.history(&HistoryQuery::default()).expect("history");
    assert_eq!(texts(&page), vec!["three", "two", "one"]);
    log.close().await;
}
