//! The log mirror's Discord sink: log lines at or above `[discord] mirror_level` posted to the channels of
//! `[discord] log_routes`.
//!
//! It never blocks or slows the swarm. The tracing layer hands records to a broadcast channel without waiting
//! (`dreamos_runtime::telemetry`); this task sorts them into one bounded queue per channel, which drops its
//! oldest lines when full and says so in the next batch ("… 37 lines dropped"); one sender per channel batches
//! lines into code blocks of at most 2000 characters and paces itself (and waits out 429s) through [`Rest`].
//! The targets of the Discord and HTTP libraries are never mirrored (the layer filters them: their spans carry
//! interaction tokens), and the token and every configured secret are redacted from each line.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use dreamos_runtime::{
    config::LogRoute,
    telemetry::{LogMirror, LogRecord},
};
use parking_lot::Mutex;
use tokio::sync::{broadcast, Notify};

use super::{
    reply::CONTENT_MAX,
    rest::{Rest, RestError},
};

/// Lines waiting per channel; beyond it the oldest go (and are counted).
pub const QUEUE_LINES: usize = 1000;

/// The least time between two posts to one channel (Discord allows about 5 per 5 s per channel).
pub const PACE: Duration = Duration::from_millis(1100);

/// The longest line kept, in characters, so that one line never fills a batch alone.
const LINE_MAX: usize = 500;

/// One channel's waiting lines, kept as records: a line is formatted (and redacted) only when it is posted, so a
/// flood whose lines are mostly dropped costs little more than the queue's bookkeeping.
#[derive(Default)]
struct Queue {
    lines: VecDeque<Arc<LogRecord>>,
    dropped: u64,
}

struct Channel {
    id: u64,
    queue: Mutex<Queue>,
    ready: Notify,
    secrets: Arc<Vec<String>>,
}

/// How the mirror runs; `pace` is [`PACE`] outside tests.
pub struct MirrorOptions {
    pub routes: Vec<LogRoute>,
    /// Redacted from every line: the token and every configured secret.
    pub secrets: Vec<String>,
    pub pace: Duration,
}

/// Starts the mirror: one task sorting records, one sender per routed channel. They end with `stop`.
pub fn spawn(
    mirror: &LogMirror,
    rest: Arc<Rest>,
    options: MirrorOptions,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut ids: Vec<u64> = options.routes.iter().map(|r| r.channel_id.0).collect();
    ids.sort();
    ids.dedup();
    let secrets: Arc<Vec<String>> = Arc::new(
        options
            .secrets
            .into_iter()
            .filter(|s| s.len() >= 4)
            .collect(),
    );
    let channels: Vec<Arc<Channel>> = ids
        .into_iter()
        .map(|id| {
            Arc::new(Channel {
                id,
                queue: Mutex::new(Queue::default()),
                ready: Notify::new(),
                secrets: secrets.clone(),
            })
        })
        .collect();
    let mut tasks = Vec::new();
    for channel in &channels {
        tasks.push(tokio::spawn(send_loop(
            channel.clone(),
            rest.clone(),
            options.pace,
            stop.clone(),
        )));
    }
    let records = mirror.subscribe();
    tasks.push(tokio::spawn(sort_loop(
        records,
        options.routes,
        channels,
        stop,
    )));
    tasks
}

async fn sort_loop(
    mut records: broadcast::Receiver<LogRecord>,
    routes: Vec<LogRoute>,
    channels: Vec<Arc<Channel>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let record = tokio::select! {
            _ = stop.changed() => return,
            record = records.recv() => record,
        };
        match record {
            Ok(record) => {
                let record = Arc::new(record);
                for route in routes.iter().filter(|r| routes_it(r, &record)) {
                    if let Some(channel) = channels.iter().find(|c| c.id == route.channel_id.0) {
                        channel.push(record.clone());
                    }
                }
            }
            // The hook's own buffer overflowed: every channel may have missed some of them.
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                for channel in &channels {
                    channel.queue.lock().dropped += missed;
                    channel.ready.notify_one();
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn routes_it(route: &LogRoute, record: &LogRecord) -> bool {
    // LogLevel orders error < warn < info < debug < trace, like tracing's verbosity.
    record.level as u8 <= route.level as u8 && record.target.starts_with(&route.target)
}

/// A record as a mirrored line, secrets redacted, at most [`LINE_MAX`] characters.
pub fn line(record: &LogRecord, secrets: &[String]) -> String {
    let mut text = format!(
        "{} {}: {}",
        record.level.as_str().to_ascii_uppercase(),
        record.target,
        record.text
    );
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), "[redacted]");
        }
    }
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    super::reply::clip(&text, LINE_MAX).replace("```", "`\u{200b}``")
}

impl Channel {
    fn push(&self, line: Arc<LogRecord>) {
        {
            let mut queue = self.queue.lock();
            if queue.lines.len() >= QUEUE_LINES {
                queue.lines.pop_front();
                queue.dropped += 1;
            }
            queue.lines.push_back(line);
        }
        self.ready.notify_one();
    }

    /// The next post: a code block of whole lines, at most 2000 characters, led by the drop count if any.
    fn batch(&self) -> Option<String> {
        let mut queue = self.queue.lock();
        if queue.lines.is_empty() && queue.dropped == 0 {
            return None;
        }
        let mut body = String::new();
        if queue.dropped > 0 {
            body.push_str(&format!("... {} lines dropped\n", queue.dropped));
            queue.dropped = 0;
        }
        // "```\n" + body + "\n```" must fit.
        let room = CONTENT_MAX - 8;
        let mut used = body.chars().count();
        while let Some(next) = queue.lines.front() {
            let next = line(next, &self.secrets);
            let size = next.chars().count() + 1;
            if used + size > room {
                break;
            }
            queue.lines.pop_front();
            body.push_str(&next);
            body.push('\n');
            used += size;
        }
        Some(format!("```\n{}\n```", body.trim_end()))
    }
}

async fn send_loop(
    channel: Arc<Channel>,
    rest: Arc<Rest>,
    pace: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let Some(content) = channel.batch() else {
            tokio::select! {
                _ = stop.changed() => return,
                _ = channel.ready.notified() => continue,
            }
        };
        let body = serde_json::json!({ "content": content, "allowed_mentions": { "parse": [] } });
        match rest.post_message(channel.id, &body, &[]).await {
            Ok(_) => {}
            // Logged under this module's target, which the mirror never mirrors (no feedback loop).
            Err(RestError::Rejected { status, message }) => {
                tracing::warn!(channel = channel.id, status, error = %message, "a log channel refused a batch")
            }
            Err(err) => {
                tracing::warn!(channel = channel.id, error = %err, "cannot post a log batch")
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(pace) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use dreamos_runtime::{config::LogLevel, message::Millis};

    use super::*;

    fn record(level: LogLevel, target: &str, text: &str) -> LogRecord {
        LogRecord {
            at: Millis(0),
            level,
            target: target.to_string(),
            text: text.to_string(),
        }
    }

    #[test]
    fn lines_are_redacted_clipped_and_cannot_break_their_block() {
        let secrets = vec!["canary-token-123".to_string()];
        let l = line(
            &record(
                LogLevel::Warn,
                "dreamos_agents",
                "token canary-token-123 ```x\u{7}",
            ),
            &secrets,
        );
        assert_eq!(l, "WARN dreamos_agents: token [redacted] `\u{200b}``x ");
        let long = line(&record(LogLevel::Info, "t", &"y".repeat(5000)), &secrets);
        assert!(long.chars().count() <= LINE_MAX);
    }

    #[test]
    fn batches_fit_discord_and_count_what_was_dropped() {
        let channel = Channel {
            id: 1,
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
            secrets: Arc::new(Vec::new()),
        };
        for i in 0..(QUEUE_LINES + 37) {
            let text = format!("line {i:05} {}", "z".repeat(100));
            channel.push(Arc::new(record(LogLevel::Warn, "t", &text)));
        }
        let first = channel.batch().expect("a batch");
        assert!(
            first.starts_with("```\n... 37 lines dropped\n"),
            "{}",
            &first[..60]
        );
        assert!(first.chars().count() <= CONTENT_MAX, "{}", first.len());
        assert!(
            first.contains("line 00037"),
            "the oldest kept line comes first"
        );
        let mut total = first.matches("line ").count();
        while let Some(batch) = channel.batch() {
            assert!(batch.chars().count() <= CONTENT_MAX);
            assert!(!batch.contains("dropped"));
            total += batch.matches("line ").count();
        }
        assert_eq!(total, QUEUE_LINES);
    }

    #[test]
    fn routes_match_level_and_target_prefix() {
        let route = LogRoute {
            level: LogLevel::Warn,
            target: "dreamos_agents".into(),
            channel_id: dreamos_runtime::config::DiscordId(1),
        };
        assert!(routes_it(
            &route,
            &record(LogLevel::Error, "dreamos_agents::ums", "x")
        ));
        assert!(!routes_it(
            &route,
            &record(LogLevel::Info, "dreamos_agents::ums", "x")
        ));
        assert!(!routes_it(
            &route,
            &record(LogLevel::Error, "dreamos_bot", "x")
        ));
    }
}
