//! What the log mirror costs the swarm: durable messaging throughput while 100,000 log lines flood the mirror
//! (posting to the fake Discord), beside the same run without the mirror listening, and a run with no flood.
//!
//! ```text
//! cargo bench -p dreamos-bot --bench mirror          # -- --seconds N --senders N
//! ```
//!
//! Three runs of `senders` tasks sending pings (acceptance only, `sync = os` so the disk is not the bottleneck)
//! for the same time, each on a fresh store: (1) quiet; (2) a thread logs 100,000 warnings while nobody listens to
//! the mirror hook; (3) the same flood with the Discord sink running. (3) against (2) is the mirror's own cost;
//! the issue's target is within 10 %.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use dreamos_agents::{
    message::{Address, AgentName, Body, Priority},
    Principal, SkillRegistry, Swarm,
};
use dreamos_bot::discord::{
    mirror::{self, MirrorOptions},
    Rest, Secret,
};
use dreamos_runtime::{
    config::{Config, DiscordId, LogLevel, LogRoute, Role, SyncMode},
    telemetry::LogMirror,
    Store,
};
use dreamos_tests::fake_discord::FakeDiscord;
use tracing_subscriber::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(name: &str, default: u64) -> u64 {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq)]
enum Run {
    Quiet,
    FloodNoMirror,
    FloodMirrored,
}

fn main() {
    let seconds = arg("--seconds", 5);
    let senders = arg("--senders", 64) as usize;
    let hook = LogMirror::new();
    tracing_subscriber::registry()
        .with(hook.layer(LogLevel::Warn))
        .init();
    let fake = FakeDiscord::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let rounds = arg("--rounds", 3);
    println!(
        "dreamos log mirror overhead ({senders} senders, {seconds} s a run, {rounds} interleaved rounds, sync = os)"
    );
    let runs = [Run::Quiet, Run::FloodNoMirror, Run::FloodMirrored];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for round in 0..rounds {
        for (i, run) in runs.iter().enumerate() {
            let (rate, lines) = runtime.block_on(one(*run, &hook, &fake, seconds, senders));
            println!(
                "round {round}  {:<36} {rate:>10.0} msg/s   ({lines} log lines emitted)",
                label(*run)
            );
            rates[i].push(rate);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians: Vec<f64> = rates.iter_mut().map(median).collect();
    for (run, m) in runs.iter().zip(&medians) {
        println!("median     {:<36} {m:>10.0} msg/s", label(*run));
    }
    let posted = fake.channel(7777).len();
    println!(
        "mirrored vs the same flood unmirrored: {:+.1}% (target within 10%); vs quiet: {:+.1}%; {posted} batches posted in all",
        100.0 * (medians[2] - medians[1]) / medians[1],
        100.0 * (medians[2] - medians[0]) / medians[0],
    );
}

fn label(run: Run) -> &'static str {
    match run {
        Run::Quiet => "no flood, no mirror",
        Run::FloodNoMirror => "100,000-line flood, nobody mirrors",
        Run::FloodMirrored => "100,000-line flood, mirrored",
    }
}

async fn one(
    run: Run,
    hook: &LogMirror,
    fake: &FakeDiscord,
    seconds: u64,
    senders: usize,
) -> (f64, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::defaults();
    config.messages.max_queued = 1_000_000;
    let store = Store::open_with(dir.path(), SyncMode::Os).expect("store");
    let swarm = Swarm::start(config, store, SkillRegistry::builtin())
        .await
        .expect("swarm");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    if run == Run::FloodMirrored {
        let rest = Arc::new(Rest::new(&fake.base_url, &Secret::new("bench".into())).expect("rest"));
        tasks = mirror::spawn(
            hook,
            rest,
            MirrorOptions {
                routes: vec![LogRoute {
                    level: LogLevel::Warn,
                    target: String::new(),
                    channel_id: DiscordId(7777),
                }],
                secrets: vec!["bench".into()],
                pace: mirror::PACE,
            },
            stop_rx,
        );
    }
    let done = Arc::new(AtomicBool::new(false));
    let emitted = Arc::new(AtomicU64::new(0));
    let flood = (run != Run::Quiet).then(|| {
        let (done, emitted) = (done.clone(), emitted.clone());
        std::thread::spawn(move || {
            for i in 0..100_000u64 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                tracing::warn!(line = i, "a flood of warnings for the mirror");
                emitted.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    let phone = swarm.cell_phone(&Principal::new("bench", Role::Operator));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let body = Body::text(&"x".repeat(180));
    let workers: Vec<_> = (0..senders)
        .map(|s| {
            let phone = phone.clone();
            let body = body.clone();
            let to = Address::Agent(AgentName::new(&format!("agent-{}", s % 4 + 1)).expect("name"));
            tokio::spawn(async move {
                let mut sent = 0u64;
                while Instant::now() < deadline {
                    if phone
                        .send(to.clone(), "ping", body.clone(), Priority::Normal)
                        .await
                        .is_ok()
                    {
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.expect("sender");
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    if let Some(flood) = flood {
        let _ = flood.join();
    }
    let _ = stop_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    swarm.shutdown(Duration::from_secs(10)).await;
    (
        total as f64 / elapsed.as_secs_f64(),
        emitted.load(Ordering::Relaxed),
    )
}
