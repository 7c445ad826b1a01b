//! Messaging benchmark: our figures beside baselines measured in the same run.
//!
//! Run with `cargo bench -p dreamos-agents --bench messaging` (add `-- --quick` for a short smoke run).
//!
//! 1. In-memory routing: producers address messages (`Ums::prepare`: validation + recipient resolution) and route
//!    them into agent mailboxes (`Router::route`: priority lanes + wake-ups); one consumer per agent pops them the
//!    way an agent does. Baseline: the same producers sending the same `Arc`'d messages into one raw tokio mpsc
//!    channel per consumer.
//! 2. Durable acceptance: many concurrent senders each awaiting `Ums::send` (validation, resolution, group commit
//!    with flush, routing) one message at a time; accept latency is the time `send` takes. Baseline: a raw sled loop
//!    with the store's exact sled settings, appending the same 200-byte messages grouped 256 to a value with one
//!    flush per group. Both in each `store.sync` mode: `full` adds an fdatasync of sled's data file per flush.
//! 3. End to end: the real swarm; senders each send a ping and wait for the reply, durable with the agent's
//!    acknowledgement. Baseline: `Ums::send` alone from as many senders, in the same run.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use dreamos_agents::{
    message::{Address, AgentName, Body, Envelope},
    stats::AgentStatus,
    ums::{AgentSpec, Ums},
};
use dreamos_runtime::{
    config::{Config, SyncMode},
    log::{LogOptions, MessageLog, StoredMessage},
    Store,
};
use tokio::sync::Notify;

// The same allocator as the `dreamos` binary (see bot/src/main.rs for why), so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AGENTS: usize = 4;
const PRODUCERS: usize = 4;
const BODY_BYTES: usize = 200;

struct Scale {
    routed: u64,
    durable_seconds: f64,
    senders: &'static [usize],
    e2e_senders: &'static [usize],
    sled_groups: u64,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick {
        Scale {
            routed: 200_000,
            durable_seconds: 1.0,
            senders: &[256],
            e2e_senders: &[64],
            sled_groups: 400,
        }
    } else {
        Scale {
            routed: 4_000_000,
            durable_seconds: 5.0,
            senders: &[128, 256, 512],
            e2e_senders: &[4, 64, 256],
            sled_groups: 4_000,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!("dreamos messaging benchmark ({} cores)", num_cpus());
    println!();
    // `--only routed`, `--only durable` or `--only e2e` runs one part, for profiling.
    let only = std::env::args()
        .skip_while(|a| a != "--only")
        .nth(1)
        .unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only == part;
    runtime.block_on(async {
        if wanted("routed") {
            routed(&scale).await;
            println!();
        }
        if wanted("durable") {
            durable(&scale).await;
            println!();
        }
        if wanted("e2e") {
            end_to_end(&scale).await;
        }
    });
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn body() -> Body {
    Body::text(&"x".repeat(BODY_BYTES - 11))
}

fn agent_names() -> Vec<AgentName> {
    (1..=AGENTS)
        .map(|i| AgentName::new(&format!("agent-{i}")).expect("name"))
        .collect()
}

/// A UMS over a fresh store, with `AGENTS` registered agents and no actors: consumers stand in for them.
fn ums(dir: &std::path::Path, sync: SyncMode) -> (Ums, MessageLog) {
    let mut config = Config::defaults();
    // The bench's consumers drain mailboxes as fast as they fill, but the bound would still refuse a burst.
    config.messages.max_queued = usize::MAX / 2;
    let store = Store::open_with(dir, sync).expect("store");
    let (log, _) = MessageLog::open(
        &store,
        LogOptions::new(&config.store, &config.messages, &config.retention),
    )
    .expect("log");
    let events = dreamos_agents::events::EventBus::new(config.messages.event_buffer_bytes);
    let ums = Ums::new(log.clone(), store, config.messages.clone(), events);
    for name in agent_names() {
        ums.register(
            name,
            AgentSpec {
                skills: vec!["ping".into()],
                groups: vec![],
                subscribe: vec!["*".into()],
            },
            AgentStatus::Idle,
        );
    }
    (ums, log)
}

/// One task per agent popping its mailbox the way the agent actor does; returns how many each took.
/// `remaining` counts down; whoever takes the last message wakes the others so that all return.
fn consumers(ums: &Ums, remaining: Arc<AtomicU64>) -> Vec<tokio::task::JoinHandle<u64>> {
    let entries = ums.entries();
    let notifies: Arc<Vec<Arc<Notify>>> =
        Arc::new(entries.iter().map(|_| Arc::new(Notify::new())).collect());
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let notify = notifies[i].clone();
            let waker = notify.clone();
            entry.mailbox.attach(Box::new(move || {
                waker.notify_one();
                true
            }));
            let remaining = remaining.clone();
            let notifies = notifies.clone();
            tokio::spawn(async move {
                let mut taken = 0u64;
                loop {
                    entry.mailbox.pump_started();
                    while entry.mailbox.pop().is_some() {
                        entry.mailbox.finish();
                        taken += 1;
                        if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                            notifies.iter().for_each(|n| n.notify_one());
                        }
                    }
                    if remaining.load(Ordering::Acquire) == 0 {
                        entry.mailbox.detach();
                        return taken;
                    }
                    notify.notified().await;
                }
            })
        })
        .collect()
}

async fn routed(scale: &Scale) {
    println!(
        "== in-memory routing: {} messages, {PRODUCERS} producers, {AGENTS} consumers ==",
        scale.routed
    );
    let names = agent_names();
    // One set of messages per producer: producers on different threads must not share reference counts, as real
    // senders, each with its own messages, do not.
    let messages = |_producer: usize| -> Vec<Arc<StoredMessage>> {
        names
            .iter()
            .map(|n| {
                let name = AgentName::new(n.as_str()).expect("name");
                Arc::new(StoredMessage {
                    envelope: Envelope::new(
                        Address::user("bench"),
                        Address::agent(&name),
                        "ping",
                        body(),
                    ),
                    recipients: vec![name],
                })
            })
            .collect()
    };
    let per_producer = scale.routed / PRODUCERS as u64;
    let total = per_producer * PRODUCERS as u64;

    // Baseline: raw tokio mpsc, one unbounded channel per consumer.
    let baseline = {
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..AGENTS {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Arc<StoredMessage>>();
            senders.push(tx);
            receivers.push(rx);
        }
        let remaining = Arc::new(AtomicU64::new(total));
        let start = Instant::now();
        let consumers: Vec<_> = receivers
            .into_iter()
            .map(|mut rx| {
                let remaining = remaining.clone();
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        std::hint::black_box(&m);
                        if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                            return;
                        }
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let senders = senders.clone();
                let messages = messages(p);
                tokio::spawn(async move {
                    for i in 0..per_producer {
                        let k = (i as usize + p) % AGENTS;
                        let _ = senders[k].send(messages[k].clone());
                    }
                })
            })
            .collect();
        for p in producers {
            p.await.expect("producer");
        }
        drop(senders);
        for c in consumers {
            c.await.expect("consumer");
        }
        rate(total, start.elapsed())
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let (ums, _log) = ums(dir.path(), SyncMode::Full);
    let router = ums.router();
    let run = |prepare: bool| {
        let ums = ums.clone();
        let router = router.clone();
        async move {
            let remaining = Arc::new(AtomicU64::new(total));
            let start = Instant::now();
            let consumers = consumers(&ums, remaining.clone());
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let ums = ums.clone();
                    let router = router.clone();
                    let messages = messages(p);
                    tokio::spawn(async move {
                        for i in 0..per_producer {
                            let k = (i as usize + p) % AGENTS;
                            let message = if prepare {
                                Arc::new(
                                    ums.prepare(messages[k].envelope.clone())
                                        .expect("valid message"),
                                )
                            } else {
                                messages[k].clone()
                            };
                            router.route(std::slice::from_ref(&message));
                            // Yield now and then, as a sender awaiting real work would.
                            if i % 1024 == 0 {
                                tokio::task::yield_now().await;
                            }
                        }
                    })
                })
                .collect();
            for p in producers {
                p.await.expect("producer");
            }
            let mut taken = 0;
            for c in consumers {
                taken += c.await.expect("consumer");
            }
            assert_eq!(taken, total, "every routed message was taken");
            rate(total, start.elapsed())
        }
    };
    let route_only = run(false).await;
    let full = run(true).await;
    println!(
        "baseline  raw tokio mpsc (1 channel per consumer)      {:>12} msg/s",
        fmt(baseline)
    );
    println!(
        "ours      route (lanes + wake-ups), pre-addressed      {:>12} msg/s  ({:.0}% of baseline)",
        fmt(route_only),
        100.0 * route_only / baseline
    );
    println!(
        "ours      prepare (validate + address) + route          {:>12} msg/s  ({:.0}% of baseline)",
        fmt(full),
        100.0 * full / baseline
    );
    println!("target    routed >= 1,000,000 msg/s and >= 30% of raw mpsc");
}

async fn durable(scale: &Scale) {
    println!("== durable acceptance: {BODY_BYTES}-byte messages ==");
    for sync in [SyncMode::Full, SyncMode::Os] {
        let sled = raw_sled(scale, sync);
        println!(
            "baseline  raw sled, sync={:<4}: 256 msgs/value, 1 flush/value    {:>12} msg/s  flush p50 {:>7.3} ms  p99 {:>7.3} ms",
            sync.as_str(),
            fmt(sled.rate),
            ms(sled.flush_p50),
            ms(sled.flush_p99)
        );
        let raw = raw_file(scale, sync);
        println!(
            "baseline  raw file, sync={:<4}: 256 msgs/pwrite, 1 sync/pwrite   {:>12} msg/s  write+sync p50 {:>7.3} ms  p99 {:>7.3} ms",
            sync.as_str(),
            fmt(raw.rate),
            ms(raw.flush_p50),
            ms(raw.flush_p99)
        );
        for &senders in scale.senders {
            let (accepted, ours, latencies) =
                accept_loop(senders, scale.durable_seconds, sync).await;
            println!(
                "ours      Ums::send, sync={:<4}, {senders:>4} concurrent senders  {:>12} msg/s  accept p50 {:>6.3} ms  p99 {:>6.3} ms  ({:.0}% of the raw file loop; {accepted} accepted)",
                sync.as_str(),
                fmt(ours),
                ms(percentile(&latencies, 0.50)),
                ms(percentile(&latencies, 0.99)),
                100.0 * ours / raw.rate
            );
        }
    }
    println!("target    durable >= 250,000 msg/s (>= 30% of the raw loop), p99 accept <= 5 ms");
}

/// A raw sled loop with exactly the store's settings (`Store::open_with`'s sled configuration, no background
/// flusher): 256 messages grouped into one value, one flush per value, and with `sync = full` the fdatasync of the
/// data file that `Store::flush` adds.
struct Raw {
    rate: f64,
    flush_p50: Duration,
    flush_p99: Duration,
}

fn raw_sled(scale: &Scale, sync: SyncMode) -> Raw {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::Config::new()
        .path(dir.path().join("db"))
        .cache_capacity(256 * 1024 * 1024)
        .segment_size(dreamos_runtime::store::SEGMENT_SIZE)
        .flush_every_ms(None)
        .open()
        .expect("sled");
    let data = std::fs::File::open(dir.path().join("db").join("db")).expect("data file");
    let tree = db.open_tree("log").expect("tree");
    let message = vec![b'x'; BODY_BYTES];
    let mut flushes = Vec::with_capacity(scale.sled_groups as usize);
    let start = Instant::now();
    for group in 0..scale.sled_groups {
        let mut value = Vec::with_capacity(256 * (BODY_BYTES + 2));
        for _ in 0..256 {
            value.extend_from_slice(&(BODY_BYTES as u16).to_be_bytes());
            value.extend_from_slice(&message);
        }
        tree.insert(group.to_be_bytes(), value).expect("insert");
        let flush = Instant::now();
        db.flush().expect("flush");
        if sync == SyncMode::Full {
            data.sync_data().expect("fdatasync");
        }
        flushes.push(flush.elapsed());
    }
    let elapsed = start.elapsed();
    flushes.sort();
    Raw {
        rate: rate(scale.sled_groups * 256, elapsed),
        flush_p50: percentile(&flushes, 0.50),
        flush_p99: percentile(&flushes, 0.99),
    }
}

/// What the log's storage does at its simplest, since groups live in segment files: the same 256-message groups
/// appended to one file with one `pwrite` each and, with `sync = full`, an fdatasync after each.
fn raw_file(scale: &Scale, sync: SyncMode) -> Raw {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.path().join("raw.seg"))
        .expect("file");
    let message = vec![b'x'; BODY_BYTES];
    let mut writes = Vec::with_capacity(scale.sled_groups as usize);
    let mut offset = 0u64;
    let start = Instant::now();
    for _ in 0..scale.sled_groups {
        let mut value = Vec::with_capacity(16 + 256 * (BODY_BYTES + 2));
        value.extend_from_slice(&[0u8; 16]);
        for _ in 0..256 {
            value.extend_from_slice(&(BODY_BYTES as u16).to_be_bytes());
            value.extend_from_slice(&message);
        }
        let write = Instant::now();
        file.write_all_at(&value, offset).expect("write");
        offset += value.len() as u64;
        if sync == SyncMode::Full {
            file.sync_data().expect("fdatasync");
        }
        writes.push(write.elapsed());
    }
    let elapsed = start.elapsed();
    writes.sort();
    Raw {
        rate: rate(scale.sled_groups * 256, elapsed),
        flush_p50: percentile(&writes, 0.50),
        flush_p99: percentile(&writes, 0.99),
    }
}

/// `senders` tasks each awaiting `Ums::send` of one message at a time for `seconds`, on a fresh store.
/// Returns (accepted, msg/s, sorted latencies); checks that the log holds exactly what was accepted.
async fn accept_loop(senders: usize, seconds: f64, sync: SyncMode) -> (u64, f64, Vec<Duration>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (ums, log) = ums(dir.path(), sync);
    log.start(ums.router()).expect("start log");
    let consumers = consumers(&ums, Arc::new(AtomicU64::new(u64::MAX)));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let names = agent_names();
    // The body is built once: what is measured is accepting messages, not formatting them.
    let body = body();
    let start = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|s| {
            let ums = ums.clone();
            let to = Address::agent(&names[s % AGENTS]);
            let body = body.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let envelope =
                        Envelope::new(Address::user("bench"), to.clone(), "ping", body.clone());
                    let t = Instant::now();
                    ums.send(envelope).await.expect("accepted");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("sender"));
    }
    let elapsed = start.elapsed();
    for c in consumers {
        c.abort();
    }
    log.close().await;
    let accepted = latencies.len() as u64;
    assert_eq!(
        log.stats().last_seq,
        accepted,
        "every accepted message is in the log"
    );
    latencies.sort();
    (accepted, rate(accepted, elapsed), latencies)
}

/// End to end through the real swarm (agent actors, skills, supervision): `senders` tasks each send a ping and
/// wait for its reply, which is an event only once the agent's acknowledgement and the reply are durable (one
/// commit). Each handling also waits for its attempt record (`Ums::begin`). Baseline: the same store's raw
/// group commit (`Ums::send` alone) from the same number of senders, measured in the same run.
async fn end_to_end(scale: &Scale) {
    println!(
        "== end to end: send -> handled by an agent -> acknowledgement and reply durable ({AGENTS} agents) =="
    );
    for sync in [SyncMode::Full, SyncMode::Os] {
        for &senders in scale.e2e_senders {
            let (accepted, baseline, _) = accept_loop(senders, scale.durable_seconds, sync).await;
            let (handled, ours, latencies) =
                round_trips(senders, scale.durable_seconds, sync).await;
            println!(
                "sync={:<4} {senders:>4} senders: baseline Ums::send {:>10} msg/s ({accepted})   ours send->reply {:>9} msg/s  p50 {:>6.3} ms  p99 {:>6.3} ms  ({handled} handled)",
                sync.as_str(),
                fmt(baseline),
                fmt(ours),
                ms(percentile(&latencies, 0.50)),
                ms(percentile(&latencies, 0.99)),
            );
        }
    }
}

async fn round_trips(senders: usize, seconds: f64, sync: SyncMode) -> (u64, f64, Vec<Duration>) {
    use dreamos_agents::{message::Priority, Principal, SkillRegistry, Swarm, SwarmEvent};
    use std::collections::HashMap;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_with(dir.path(), sync).expect("store");
    let mut config = Config::defaults();
    config.log.files = false;
    let swarm = Swarm::start(config, store, SkillRegistry::builtin())
        .await
        .expect("swarm");
    // One dispatcher hands each reply to the sender waiting for it.
    type Waiters = parking_lot::Mutex<
        HashMap<dreamos_agents::message::MessageId, tokio::sync::oneshot::Sender<()>>,
    >;
    let waiters: Arc<Waiters> = Arc::new(parking_lot::Mutex::new(HashMap::new()));
    let mut events = swarm.subscribe();
    let routes = waiters.clone();
    let dispatcher = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let SwarmEvent::Message(m) = event {
                if let Some(to) = m.envelope.reply_to {
                    if let Some(done) = routes.lock().remove(&to) {
                        let _ = done.send(());
                    }
                }
            }
        }
    });
    let who = Principal::new("bench", dreamos_runtime::config::Role::Operator);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let names = agent_names();
    let start = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|s| {
            let phone = swarm.cell_phone(&who);
            let to = Address::agent(&names[s % AGENTS]);
            let waiters = waiters.clone();
            let body = body();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let envelope =
                        Envelope::new(phone.owner().clone(), to.clone(), "ping", body.clone());
                    let id = envelope.id;
                    let (done, replied) = tokio::sync::oneshot::channel();
                    waiters.lock().insert(id, done);
                    let t = Instant::now();
                    phone
                        .send_envelope(envelope.with_priority(Priority::Normal))
                        .await
                        .expect("accepted");
                    replied.await.expect("reply");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("sender"));
    }
    let elapsed = start.elapsed();
    swarm.shutdown(Duration::from_secs(10)).await;
    dispatcher.abort();
    latencies.sort();
    let handled = latencies.len() as u64;
    (handled, rate(handled, elapsed), latencies)
}

fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fmt(rate: f64) -> String {
    let n = rate.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
