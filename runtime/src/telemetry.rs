//! Tracing setup: terminal output (human or JSON) on stderr, daily-rotated files under `<data-dir>/logs`, and the
//! log-mirror hook that frontends (the Discord log channels) subscribe to.
//!
//! Only the binary's `main` calls [`init`]; libraries just emit `tracing` events. Nothing here ever formats a
//! secret: secrets are not passed to tracing anywhere in dreamos, and the mirror forwards only what was logged.

use std::{fmt::Write as _, path::Path};

use serde::Serialize;
use tokio::sync::broadcast;
use tracing::{field::Field, Event, Level, Subscriber};
use tracing_subscriber::{filter::LevelFilter, layer::Context, prelude::*, EnvFilter, Layer};

use crate::{
    config::{LogConfig, LogFormat, LogLevel},
    error::{Error, Result},
    message::Millis,
};

/// How many records a slow mirror subscriber may fall behind before it misses some.
const MIRROR_CAPACITY: usize = 1024;

/// One log event, as a mirror subscriber receives it.
#[derive(Debug, Clone, Serialize)]
pub struct LogRecord {
    pub at: Millis,
    pub level: LogLevel,
    pub target: String,
    /// The message followed by its fields, `key=value`.
    pub text: String,
}

/// The hook log mirrors plug into. Cheap to clone.
#[derive(Clone)]
pub struct LogMirror {
    tx: broadcast::Sender<LogRecord>,
}

impl LogMirror {
    pub fn new() -> LogMirror {
        LogMirror {
            tx: broadcast::channel(MIRROR_CAPACITY).0,
        }
    }

    /// The tracing layer that feeds this mirror with events at or above `level` (for subscribers built elsewhere
    /// than [`init`]: benchmarks).
    pub fn layer(&self, level: LogLevel) -> MirrorLayer {
        MirrorLayer {
            tx: self.tx.clone(),
            max: to_level(level),
        }
    }

    /// Hands a record to every subscriber, as the tracing layer does; never waits.
    pub fn publish(&self, record: LogRecord) {
        let _ = self.tx.send(record);
    }

    /// Receives every record at or above the configured `mirror_level` from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LogRecord> {
        self.tx.subscribe()
    }
}

impl Default for LogMirror {
    fn default() -> Self {
        LogMirror::new()
    }
}

/// Forwards events to a [`LogMirror`]; costs one atomic load per event while nobody subscribes.
pub struct MirrorLayer {
    tx: broadcast::Sender<LogRecord>,
    max: Level,
}

impl<S: Subscriber> Layer<S> for MirrorLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if self.tx.receiver_count() == 0 || *meta.level() > self.max || !mirrored(meta.target()) {
            return;
        }
        let mut visitor = TextVisitor::default();
        event.record(&mut visitor);
        let _ = self.tx.send(LogRecord {
            at: Millis::now(),
            level: from_level(*meta.level()),
            target: meta.target().to_string(),
            text: visitor.finish(),
        });
    }
}

#[derive(Default)]
struct TextVisitor {
    message: String,
    fields: String,
}

impl TextVisitor {
    fn finish(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else if self.message.is_empty() {
            self.fields
        } else {
            format!("{} {}", self.message, self.fields)
        }
    }
}

impl tracing::field::Visit for TextVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(
                self.fields,
                "{}{}={}",
                sep(&self.fields),
                field.name(),
                value
            );
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(
                self.fields,
                "{}{}={:?}",
                sep(&self.fields),
                field.name(),
                value
            );
        }
    }
}

fn sep(s: &str) -> &'static str {
    if s.is_empty() {
        ""
    } else {
        " "
    }
}

fn to_level(level: LogLevel) -> Level {
    match level {
        LogLevel::Error => Level::ERROR,
        LogLevel::Warn => Level::WARN,
        LogLevel::Info => Level::INFO,
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Trace => Level::TRACE,
    }
}

fn from_level(level: Level) -> LogLevel {
    match level {
        Level::ERROR => LogLevel::Error,
        Level::WARN => LogLevel::Warn,
        Level::INFO => LogLevel::Info,
        Level::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

/// Keeps the file writer alive; dropping it flushes buffered log lines.
pub struct Telemetry {
    _file_guard: Option<tracing_appender::non_blocking::WorkerGuard>,
    pub mirror: LogMirror,
}

/// A filter for one output: `RUST_LOG` when set, else our crates at `level` and everything else at warn.
fn filter(level: LogLevel) -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::builder()
            .with_default_directive(LevelFilter::WARN.into())
            .parse_lossy(directives),
        _ => EnvFilter::new(format!("warn,dreamos={}", level.as_str())),
    }
}

/// Targets whose events are never mirrored: the Discord and HTTP libraries' spans and events can carry tokens
/// (interaction tokens, the bot's Authorization header), and a mirror of a mirror's own HTTP traffic would feed
/// itself.
pub const UNMIRRORED_TARGETS: &[&str] = &[
    "serenity",
    "poise",
    "reqwest",
    "hyper",
    "h2",
    "rustls",
    "tungstenite",
    "tokio_tungstenite",
    "dreamos_bot::discord::mirror",
];

fn mirrored(target: &str) -> bool {
    !UNMIRRORED_TARGETS.iter().any(|t| {
        target == *t
            || target
                .strip_prefix(t)
                .is_some_and(|rest| rest.starts_with("::"))
    })
}

/// Installs the global subscriber. Call once, from `main`. `mirror_level` is the lowest level the log mirror
/// hook receives.
pub fn init(config: &LogConfig, mirror_level: LogLevel, data_dir: &Path) -> Result<Telemetry> {
    let mirror = LogMirror::new();
    let console = match config.format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(true)
            // Colours are for people at a terminal; a pipe or a file gets plain text.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(filter(config.console_level));

    let (file_layer, guard) = if config.files {
        let dir = data_dir.join("logs");
        std::fs::create_dir_all(&dir).map_err(|e| Error::DataDir {
            dir: dir.clone(),
            cause: e,
        })?;
        let appender = tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("dreamos")
            .filename_suffix("log")
            .max_log_files(14)
            .build(&dir)
            .map_err(|e| {
                Error::Telemetry(format!("cannot open log files in {}: {e}", dir.display()))
            })?;
        let (writer, guard) = tracing_appender::non_blocking(appender);
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .with_filter(filter(config.level));
        (Some(layer), Some(guard))
    } else {
        (None, None)
    };

    let mirror_layer = MirrorLayer {
        tx: mirror.tx.clone(),
        max: to_level(mirror_level),
    }
    .with_filter(filter(mirror_level));

    tracing_subscriber::registry()
        .with(console)
        .with(file_layer)
        .with(mirror_layer)
        .try_init()
        .map_err(|e| Error::Telemetry(e.to_string()))?;
    Ok(Telemetry {
        _file_guard: guard,
        mirror,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_receives_events_at_or_above_its_level_with_fields() {
        let mirror = LogMirror::new();
        let mut rx = mirror.subscribe();
        let subscriber = tracing_subscriber::registry().with(MirrorLayer {
            tx: mirror.tx.clone(),
            max: Level::INFO,
        });
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("too quiet");
            tracing::warn!(target: "serenity::http", "token in a span: Bot abc");
            tracing::warn!(target: "reqwest::connect", "connecting");
            tracing::warn!(agent = "agent-1", attempts = 3, "agent restarted");
        });
        let record = rx.try_recv().expect("one record");
        assert_eq!(record.level, LogLevel::Warn);
        assert_eq!(record.text, "agent restarted agent=agent-1 attempts=3");
        assert!(
            rx.try_recv().is_err(),
            "the debug event and the excluded targets must not be mirrored"
        );
        assert!(mirrored("serenityish") && !mirrored("serenity") && !mirrored("h2::proto"));
    }
}
