//! Task benchmark: no-op tasks created, scheduled and completed per second with durable state, and the time from
//! creation to the skill's start on an idle swarm, beside the message log's durable acceptance in the same run.
//!
//! ```text
//! cargo bench -p dreamos-agents --bench tasks -- [--seconds 5] [--creators 256] [--sync full|os]
//! ```
//!
//! Baseline: as many concurrent senders each awaiting `CellPhone::send` (validation, group commit, fdatasync)
//! for the same time, to paused agents (the pings wait unhandled, so they take nothing from what follows). Ours: as many concurrent creators each creating a no-op task and waiting for it to be done;
//! every change of a task (created, placed, done) is durable before it is reported, sharing flushes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dreamos_agents::message::{Address, Body, Priority};
use dreamos_agents::{Principal, Skill, SkillContext, SkillError, SkillRegistry, Swarm};
use dreamos_runtime::config::{Config, Role, SyncMode};
use dreamos_runtime::task::{Origin, TaskSpec, TaskStatus};
use dreamos_runtime::Store;
use tokio::sync::mpsc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::arg;

/// `noop`: tells the bench it started, and is done.
struct Noop(mpsc::UnboundedSender<Instant>);

#[async_trait]
impl Skill for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }

    fn summary(&self) -> &'static str {
        "bench skill: does nothing"
    }

    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError> {
        let _ = self.0.send(Instant::now());
        cx.reply(serde_json::json!({ "ok": true }))
    }
}

fn spec() -> TaskSpec {
    TaskSpec::new(
        "noop",
        serde_json::json!({}),
        1,
        Origin::new("bench", "bench"),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Durable acceptance of messages by `creators` concurrent senders for `seconds`, to paused agents (the pings
/// wait unhandled), then one sender's accept latency on the same swarm; on a swarm of its own.
async fn baseline(sync: SyncMode, seconds: f64, creators: usize) -> (f64, Vec<Duration>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::defaults();
    config.store.sync = sync;
    config.messages.max_queued = 1_000_000;
    let store = Store::open_with(dir.path(), sync).expect("store");
    let swarm = Swarm::start(config, store, SkillRegistry::builtin())
        .await
        .expect("swarm");
    let who = Principal::new("bench", Role::Captain);
    let captain = swarm.captain_phone(&who).expect("captain");
    for agent in swarm.agents() {
        let to: Address = agent.name.as_str().parse().expect("address");
        captain
            .control(to, dreamos_agents::ControlVerb::Pause)
            .await
            .expect("pause");
    }
    let sent = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut senders = Vec::new();
    for i in 0..creators {
        let phone = swarm.cell_phone(&who);
        let sent = sent.clone();
        let to: Address = format!("agent-{}", i % 4 + 1).parse().expect("address");
        senders.push(tokio::spawn(async move {
            while Instant::now() < until {
                if phone
                    .send(to.clone(), "ping", Body::text("x"), Priority::Low)
                    .await
                    .is_ok()
                {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for s in senders {
        let _ = s.await;
    }
    let rate = sent.load(Ordering::Relaxed) as f64 / seconds;
    let phone = swarm.cell_phone(&who);
    let mut accepts = Vec::new();
    for _ in 0..2_000 {
        let t = Instant::now();
        phone
            .send(
                "agent-1".parse().expect("address"),
                "ping",
                Body::text("x"),
                Priority::Low,
            )
            .await
            .expect("send");
        accepts.push(t.elapsed());
    }
    accepts.sort();
    swarm.shutdown(Duration::from_millis(100)).await;
    (rate, accepts)
}

fn main() {
    let seconds: f64 = arg("--seconds", 5.0);
    let creators: usize = arg("--creators", 256);
    let sync = match arg("--sync", "full".to_string()).as_str() {
        "os" => SyncMode::Os,
        _ => SyncMode::Full,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        // The baseline runs on a swarm of its own (its queued pings would otherwise weigh on the tasks' store).
        let (baseline, accepts) = baseline(sync, seconds, creators).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::defaults();
        config.store.sync = sync;
        // Every creator's task may run at once, and every creator may wait on the manager.
        config.tasks.per_agent = 1024;
        config.tasks.max_pending = 1 << 16;
        let store = Store::open_with(dir.path(), sync).expect("store");
        let (started_tx, mut started_rx) = mpsc::unbounded_channel();
        let mut skills = SkillRegistry::builtin();
        skills.add(Arc::new(Noop(started_tx)));
        let swarm = Swarm::start(config, store, skills)
            .await
            .expect("swarm");
        let manager = swarm.tasks().clone();
        println!(
            "dreamos task benchmark: sync={sync:?}, {creators} concurrent creators, {seconds} s each, {} agents",
            swarm.agents().len()
        );

        // Ours: tasks created, placed and completed, each step durable.
        let done = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs_f64(seconds);
        let mut workers = Vec::new();
        for _ in 0..creators {
            let manager = manager.clone();
            let done = done.clone();
            workers.push(tokio::spawn(async move {
                while Instant::now() < until {
                    let Ok(task) = manager.create(spec()).await else {
                        continue;
                    };
                    // Wait for completion: each creator has one task in flight.
                    loop {
                        match manager.get(task.id).await {
                            Ok(t) if t.status == TaskStatus::Done => break,
                            Ok(t) if t.status.is_final() => break,
                            Ok(_) => tokio::task::yield_now().await,
                            Err(_) => break,
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for w in workers {
            let _ = w.await;
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let completed = done.load(Ordering::Relaxed);
        let ours = completed as f64 / elapsed;
        while started_rx.try_recv().is_ok() {}
        println!(
            "baseline  messages accepted (CellPhone::send, durable)   {baseline:>10.0} /s"
        );
        println!(
            "ours      no-op tasks created+placed+done (durable)      {ours:>10.0} /s  ({completed} tasks, {:.0}% of baseline; target 10,000/s)",
            ours / baseline * 100.0
        );

        // Latency from creation to the skill's start on an idle swarm, one task at a time.
        let mut latencies = Vec::new();
        let mut answered = Vec::new();
        for _ in 0..2_000 {
            let t = Instant::now();
            let task = manager.create(spec()).await.expect("create");
            answered.push(t.elapsed());
            let started = started_rx.recv().await.expect("started");
            latencies.push(started - t);
            loop {
                match manager.get(task.id).await {
                    Ok(t) if t.status.is_final() => break,
                    _ => tokio::task::yield_now().await,
                }
            }
        }
        latencies.sort();
        answered.sort();
        println!(
            "baseline  message accept latency (idle)                  p50 {:>7.3} ms  p99 {:>7.3} ms",
            percentile(&accepts, 0.5).as_secs_f64() * 1e3,
            percentile(&accepts, 0.99).as_secs_f64() * 1e3
        );
        println!(
            "ours      task creation -> skill start (idle)            p50 {:>7.3} ms  p99 {:>7.3} ms  (target p99 <= 5 ms)",
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3
        );
        println!(
            "ours      task creation answered (durable, placed)       p50 {:>7.3} ms  p99 {:>7.3} ms",
            percentile(&answered, 0.5).as_secs_f64() * 1e3,
            percentile(&answered, 0.99).as_secs_f64() * 1e3
        );
        let _ = manager.shutdown().await;
        swarm.shutdown(Duration::from_millis(100)).await;
    });
}
