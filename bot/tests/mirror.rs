//! The log mirror's Discord sink against the fake Discord: batches of whole lines in code blocks of at most 2000
//! characters, a drop counter under a flood, secrets redacted, and 429s waited out.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use dreamos_bot::discord::{
    mirror::{self, MirrorOptions, QUEUE_LINES},
    Rest, Secret,
};
use dreamos_runtime::{
    config::{DiscordId, LogLevel, LogRoute},
    message::Millis,
    telemetry::{LogMirror, LogRecord},
};
use dreamos_tests::fake_discord::FakeDiscord;

const CHANNEL: u64 = 7777;
const CANARY: &str = "canary-secret-91f2a7";

fn record(i: usize) -> LogRecord {
    LogRecord {
        at: Millis(0),
        level: LogLevel::Warn,
        target: "dreamos_agents::flood".to_string(),
        text: format!("line {i:06} with the token {CANARY} in it"),
    }
}

struct Mirror {
    fake: FakeDiscord,
    runtime: tokio::runtime::Runtime,
    hook: LogMirror,
    stop: tokio::sync::watch::Sender<bool>,
}

fn start(pace: Duration) -> Mirror {
    let fake = FakeDiscord::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let hook = LogMirror::new();
    let rest = Arc::new(Rest::new(&fake.base_url, &Secret::new(CANARY.to_string())).expect("rest"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let options = MirrorOptions {
        routes: vec![LogRoute {
            level: LogLevel::Warn,
            target: "dreamos".to_string(),
            channel_id: DiscordId(CHANNEL),
        }],
        secrets: vec![CANARY.to_string()],
        pace,
    };
    let guard = runtime.enter();
    mirror::spawn(&hook, rest, options, stopped);
    drop(guard);
    Mirror {
        fake,
        runtime,
        hook,
        stop,
    }
}

fn lines(fake: &FakeDiscord) -> Vec<String> {
    fake.channel(CHANNEL)
        .iter()
        .flat_map(|m| {
            m["content"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| l.starts_with("WARN"))
        .collect()
}

#[test]
fn a_flood_is_batched_within_discords_limit_and_what_is_dropped_is_counted() {
    let m = start(Duration::from_millis(5));
    let started = Instant::now();
    for i in 0..100_000 {
        m.hook.publish(record(i));
    }
    let flood = started.elapsed();
    // Publishing never waits for Discord: 100,000 lines take a moment, not 100,000 posts.
    eprintln!("mirror: 100,000 lines published in {flood:?}");
    // The newest line arrives, whole; on the way the oldest ones were dropped, and every batch after a drop said
    // how many.
    m.fake
        .wait_channel_message(CHANNEL, Duration::from_secs(60), |msg| {
            msg["content"]
                .as_str()
                .is_some_and(|c| c.contains("line 099999"))
        });
    let mut dropped = 0u64;
    for message in m.fake.channel(CHANNEL) {
        let content = message["content"].as_str().unwrap_or_default();
        assert!(content.chars().count() <= 2000, "{}", content.len());
        assert!(
            content.starts_with("```\n") && content.ends_with("\n```"),
            "{content}"
        );
        assert!(!content.contains(CANARY), "the secret was mirrored");
        if let Some(count) = content
            .strip_prefix("```\n... ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            dropped += count;
        }
    }
    let kept = lines(&m.fake);
    assert!(
        kept.iter().all(|l| l.contains("[redacted]")),
        "{:?}",
        &kept[..3]
    );
    eprintln!(
        "mirror: {} lines posted in {} batches, {dropped} dropped and counted",
        kept.len(),
        m.fake.channel(CHANNEL).len()
    );
    assert!(
        dropped > 0,
        "a flood of 100,000 overflowed the queue of {QUEUE_LINES}"
    );
    assert_eq!(
        kept.len() as u64 + dropped,
        100_000,
        "every line is posted or counted as dropped"
    );
    let _ = m.stop.send(true);
    drop(m.runtime);
}

#[test]
fn a_429_is_waited_out_and_nothing_is_lost() {
    let m = start(Duration::from_millis(5));
    m.fake.rate_limit_channel_posts(2, 0.4);
    let started = Instant::now();
    for i in 0..10 {
        m.hook.publish(record(i));
    }
    m.fake
        .wait_channel_message(CHANNEL, Duration::from_secs(30), |msg| {
            msg["content"]
                .as_str()
                .is_some_and(|c| c.contains("line 000009"))
        });
    let waited = started.elapsed();
    let refused = m
        .fake
        .count(|r| r.path == format!("/channels/{CHANNEL}/messages"))
        - m.fake.channel(CHANNEL).len();
    assert_eq!(refused, 2, "two posts were answered 429");
    assert!(
        waited >= Duration::from_millis(800),
        "retry_after was honoured: {waited:?}"
    );
    assert_eq!(lines(&m.fake).len(), 10, "every line arrived once");
    let _ = m.stop.send(true);
    drop(m.runtime);
}
