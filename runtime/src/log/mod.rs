//! The message log: durable acceptance by group commit, recovery after a crash, history, dead letters, retention.
//!
//! # Layout
//!
//! The `log` tree holds *groups*. A group is everything one flush made durable: new messages (each with its
//! resolved recipients) and resolutions (an agent handled a message, failed it once, or gave up on it). Its key
//! is a big-endian group number, its value one postcard-encoded [`Group`]. Writing a few hundred records as one
//! sled value with one flush is what makes acceptance fast: sled pays per key and per flush, not per byte.
//!
//! # Guarantees
//!
//! * [`MessageLog::append`] returns only after the group holding the messages is flushed: an accepted message
//!   survives `kill -9`.
//! * An agent's acknowledgement and the messages its handler produced (its replies) are written in the same group,
//!   so after a crash either both exist or neither does: handling is exactly once as far as the store can see.
//! * After a restart, [`Recovery`] lists every (message, recipient) pair without a resolution, in sequence order:
//!   that is what must be delivered again.
//! * Compaction removes only a prefix of groups, and never past a message that still has an unresolved recipient,
//!   so a resolution is never dropped while the message it resolves is still in the log.

mod committer;
mod state;

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use self::state::{HistoryEntry, HistoryPage, HistoryQuery, Receipt, ReceiptStatus};
use self::state::{LogState, DEAD_TREE, LOG_TREE};
use crate::{
    config::{RetentionConfig, StoreConfig},
    error::{Error, Result},
    message::{AgentName, Envelope, MessageId, Millis, Seq},
    store::{Store, TypedTree},
};

/// A message as the log keeps it: the envelope and the agents it was resolved to when accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub envelope: Envelope,
    /// The agents that must handle it. Empty for messages to people (`user:…`), which need no handling.
    pub recipients: Vec<AgentName>,
}

/// What the log answers when it has accepted a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub id: MessageId,
    pub seq: Seq,
    pub accepted_at: Millis,
}

/// What became of one delivery of a message to one agent.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Handled; the message is done for this agent.
    Handled,
    /// This attempt failed; the message will be delivered again.
    Failed { attempt: u32, error: String },
    /// Failed too often: the message goes to the dead-letter store.
    Dead {
        attempts: u32,
        error: String,
        message: Arc<StoredMessage>,
    },
}

/// An agent's verdict on a message.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub seq: Seq,
    pub agent: AgentName,
    pub outcome: Outcome,
}

/// A message the dead-letter store holds, with why it got there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub message: StoredMessage,
    pub agent: AgentName,
    pub attempts: u32,
    pub error: String,
    pub at: Millis,
}

/// What one commit made durable, handed to the [`CommitSink`] right after the flush.
#[derive(Debug, Default)]
pub struct Committed {
    pub messages: Vec<Arc<StoredMessage>>,
    pub resolutions: Vec<Resolution>,
}

/// Told about every commit after its flush, in commit order, on the log's completer task (inside the async
/// runtime), before the commit's senders get their answers. It must not block. The UnifiedMessageSystem implements
/// it to route accepted messages to mailboxes.
pub trait CommitSink: Send + Sync + 'static {
    fn committed(&self, batch: &Committed);
}

/// One (message, agent) pair found unresolved when the log was opened: deliver it again.
#[derive(Debug, Clone)]
pub struct Redelivery {
    pub message: Arc<StoredMessage>,
    pub agent: AgentName,
    /// Failed attempts recorded before the restart.
    pub attempts: u32,
}

/// What opening the log found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Unresolved deliveries, in sequence order.
    pub redeliveries: Vec<Redelivery>,
    /// Messages found in the log.
    pub messages: u64,
    /// Groups read.
    pub groups: u64,
}

/// Counters for `/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LogStats {
    /// Highest sequence number accepted so far (0 when nothing was).
    pub last_seq: u64,
    /// Messages kept in history.
    pub retained: u64,
    /// Messages some recipient has not resolved yet.
    pub unresolved: u64,
    /// Entries in the dead-letter store.
    pub dead_letters: u64,
}

/// Settings of the log, from the `store` and `retention` sections.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub max_batch: usize,
    pub retention_max_messages: u64,
    pub retention_max_age: Duration,
    pub compact_every: Duration,
}

impl LogOptions {
    pub fn new(store: &StoreConfig, retention: &RetentionConfig) -> LogOptions {
        LogOptions {
            max_batch: store.max_batch,
            retention_max_messages: retention.max_messages,
            retention_max_age: retention.max_age,
            compact_every: retention.compact_every,
        }
    }
}

/// Work for the writer thread.
enum Submission {
    Append {
        messages: Vec<StoredMessage>,
        done: oneshot::Sender<Result<Vec<Accepted>, String>>,
    },
    Resolve {
        resolution: Resolution,
        outputs: Vec<StoredMessage>,
    },
    /// Flush the store soon, for writes made outside the log (the audit log).
    Flush,
    /// Answered once everything queued before it is durable and the sink has heard of it.
    Barrier {
        done: oneshot::Sender<()>,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}

impl Submission {
    fn records(&self) -> usize {
        match self {
            Submission::Append { messages, .. } => messages.len(),
            Submission::Resolve { outputs, .. } => 1 + outputs.len(),
            Submission::Flush | Submission::Barrier { .. } | Submission::Close { .. } => 0,
        }
    }
}

/// One flushed write of the `log` tree.
#[derive(Debug, Serialize, Deserialize)]
struct Group<R> {
    /// Sequence number of the group's first message, or of the next message if it has none.
    first_seq: u64,
    at: Millis,
    records: Vec<R>,
}

/// A record as written: borrows the message so that encoding copies nothing.
#[derive(Serialize)]
enum RecordRef<'a> {
    Message(&'a StoredMessage),
    Handled {
        seq: Seq,
        agent: &'a AgentName,
    },
    Failed {
        seq: Seq,
        agent: &'a AgentName,
        attempt: u32,
        error: &'a str,
    },
    Dead {
        seq: Seq,
        agent: &'a AgentName,
        attempts: u32,
        error: &'a str,
    },
}

/// A record as read back. Variant order must match [`RecordRef`].
#[derive(Debug, Deserialize)]
enum Record {
    Message(StoredMessage),
    Handled {
        seq: Seq,
        agent: AgentName,
    },
    Failed {
        seq: Seq,
        agent: AgentName,
        attempt: u32,
        #[allow(dead_code)]
        error: String,
    },
    Dead {
        seq: Seq,
        agent: AgentName,
        #[allow(dead_code)]
        attempts: u32,
        #[allow(dead_code)]
        error: String,
    },
}

/// The durable message log. Cheap to clone.
#[derive(Clone)]
pub struct MessageLog {
    inner: Arc<LogInner>,
}

struct LogInner {
    tx: mpsc::Sender<Submission>,
    /// Taken by [`MessageLog::start`].
    rx: Mutex<Option<mpsc::Receiver<Submission>>>,
    state: Mutex<LogState>,
    log_tree: sled::Tree,
    dead: TypedTree<DeadLetter>,
    store: Store,
    options: LogOptions,
    closed: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The task that routes commits and answers senders; it ends when the writer does.
    completer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Wakes the compactor early when the log closes.
    compactor_wake: (Mutex<bool>, Condvar),
}

impl std::fmt::Debug for MessageLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageLog")
            .field("dir", &self.inner.store.dir())
            .finish()
    }
}

/// Submissions waiting for the writer. A full queue makes senders wait (backpressure) instead of growing memory.
const QUEUE_CAPACITY: usize = 64 * 1024;

impl MessageLog {
    /// Opens the log and replays it. Nothing is written until [`MessageLog::start`].
    pub fn open(store: &Store, options: LogOptions) -> Result<(MessageLog, Recovery)> {
        let log_tree = store.raw_tree(LOG_TREE)?;
        let dead = store.typed::<DeadLetter>(DEAD_TREE)?;
        let (state, recovery) = LogState::recover(&log_tree, &dead)?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let log = MessageLog {
            inner: Arc::new(LogInner {
                tx,
                rx: Mutex::new(Some(rx)),
                state: Mutex::new(state),
                log_tree,
                dead,
                store: store.clone(),
                options,
                closed: AtomicBool::new(false),
                threads: Mutex::new(Vec::new()),
                completer: Mutex::new(None),
                compactor_wake: (Mutex::new(false), Condvar::new()),
            }),
        };
        Ok((log, recovery))
    }

    /// Starts the writer and compactor threads, and the completer task that routes commits through `sink` and
    /// answers senders. Must be called inside a tokio runtime.
    pub fn start(&self, sink: Arc<dyn CommitSink>) -> Result<()> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Internal("the message log must be started inside a tokio runtime".to_string())
        })?;
        let rx = self
            .inner
            .rx
            .lock()
            .take()
            .ok_or_else(|| Error::Internal("message log started twice".to_string()))?;
        let (completer_tx, completer_rx) = mpsc::unbounded_channel();
        let completer = runtime.spawn(committer::complete(completer_rx, sink));
        *self.inner.completer.lock() = Some(completer);
        let inner = self.inner.clone();
        let writer = std::thread::Builder::new()
            .name("dreamos-log-writer".to_string())
            .spawn(move || committer::run(inner, rx, completer_tx))
            .map_err(|e| Error::DataDir {
                dir: self.inner.store.dir().to_path_buf(),
                cause: e,
            })?;
        let inner = self.inner.clone();
        let compactor = std::thread::Builder::new()
            .name("dreamos-log-compactor".to_string())
            .spawn(move || compactor_loop(inner))
            .map_err(|e| Error::DataDir {
                dir: self.inner.store.dir().to_path_buf(),
                cause: e,
            })?;
        self.inner.threads.lock().extend([writer, compactor]);
        Ok(())
    }

    /// Accepts messages: returns once they are durable, with their sequence numbers, in order.
    pub async fn append(&self, messages: Vec<StoredMessage>) -> Result<Vec<Accepted>> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let (done, accepted) = oneshot::channel();
        self.inner
            .tx
            .send(Submission::Append { messages, done })
            .await
            .map_err(|_| Error::Closed)?;
        match accepted.await {
            Ok(Ok(accepted)) => Ok(accepted),
            Ok(Err(message)) => Err(Error::LogWrite(message)),
            Err(_) => Err(Error::Closed),
        }
    }

    /// Records an agent's verdict on a message, together with the messages its handler produced. Returns once the
    /// writer has it queued; the [`CommitSink`] hears when it is durable.
    pub async fn resolve(&self, resolution: Resolution, outputs: Vec<StoredMessage>) -> Result<()> {
        self.inner
            .tx
            .send(Submission::Resolve {
                resolution,
                outputs,
            })
            .await
            .map_err(|_| Error::Closed)
    }

    /// Asks the writer to flush the store soon, without waiting. Other trees of the store (the audit log) use it
    /// to become durable within milliseconds without a flush of their own on the caller's path.
    pub fn request_flush(&self) {
        // A full queue means the writer is busy and will flush after its next group anyway.
        let _ = self.inner.tx.try_send(Submission::Flush);
    }

    /// Waits until everything submitted before this call is durable and the sink has been told.
    pub async fn barrier(&self) -> Result<()> {
        let (done, reached) = oneshot::channel();
        self.inner
            .tx
            .send(Submission::Barrier { done })
            .await
            .map_err(|_| Error::Closed)?;
        reached.await.map_err(|_| Error::Closed)
    }

    /// Stops accepting, writes and flushes everything queued before this call, and stops the threads.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let (done, closed) = oneshot::channel();
        if self.inner.tx.send(Submission::Close { done }).await.is_ok() {
            let _ = closed.await;
        }
        {
            let (lock, cvar) = &self.inner.compactor_wake;
            *lock.lock() = true;
            cvar.notify_all();
        }
        let threads: Vec<_> = self.inner.threads.lock().drain(..).collect();
        for thread in threads {
            // Both threads have been told to stop; joining them is quick, but do it off the async runtime.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        // The writer has exited, dropping its end of the completer's channel: the completer finishes what is
        // queued and ends.
        let completer = self.inner.completer.lock().take();
        if let Some(completer) = completer {
            let _ = completer.await;
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// A page of history, newest first.
    pub fn history(&self, query: &HistoryQuery) -> Result<HistoryPage> {
        state::history(&self.inner, query)
    }

    /// Dead letters, newest first; `before` pages on by sequence number.
    pub fn dead_letters(&self, limit: usize, before: Option<Seq>) -> Result<Vec<DeadLetter>> {
        let end = before.map_or(u64::MAX, |s| s.0).to_be_bytes().to_vec();
        let mut out = Vec::new();
        for entry in self.inner.dead.range(..end).rev() {
            if out.len() >= limit {
                break;
            }
            out.push(entry?.1);
        }
        Ok(out)
    }

    pub fn stats(&self) -> LogStats {
        let state = self.inner.state.lock();
        LogStats {
            last_seq: state.next_seq.saturating_sub(1),
            retained: state.retained(),
            unresolved: state.unresolved_count(),
            dead_letters: self.inner.dead.len() as u64,
        }
    }

    /// Enforces the retention bounds now. The compactor thread calls this every `compact_every`.
    pub fn compact(&self) -> Result<u64> {
        compact(&self.inner, Millis::now())
    }

    /// Compaction as if the clock read `now`; for tests of age-based retention.
    #[doc(hidden)]
    pub fn compact_at(&self, now: Millis) -> Result<u64> {
        compact(&self.inner, now)
    }

    /// Where the log lives, for messages.
    pub fn dir(&self) -> PathBuf {
        self.inner.store.dir().to_path_buf()
    }
}

fn compactor_loop(inner: Arc<LogInner>) {
    let (lock, cvar) = &inner.compactor_wake;
    loop {
        {
            let mut stop = lock.lock();
            if !*stop {
                cvar.wait_for(&mut stop, inner.options.compact_every);
            }
            if *stop {
                return;
            }
        }
        if let Err(err) = compact(&inner, Millis::now()) {
            tracing::error!(error = %err, "message log compaction failed");
        }
    }
}

/// Removes the prefix of groups that retention allows to drop. Returns how many messages went.
fn compact(inner: &LogInner, now: Millis) -> Result<u64> {
    let age_cutoff = now.saturating_sub(inner.options.retention_max_age);
    let (keys, removed) = inner
        .state
        .lock()
        .take_compactable(inner.options.retention_max_messages, age_cutoff);
    if keys.is_empty() {
        return Ok(0);
    }
    let mut batch = sled::Batch::default();
    for key in &keys {
        batch.remove(&key.to_be_bytes());
    }
    // No flush of its own: if a removal is lost in a crash, recovery reads the group again and finds every
    // message in it resolved, so nothing is delivered twice.
    inner.log_tree.apply_batch(batch)?;
    tracing::debug!(
        groups = keys.len(),
        messages = removed,
        "compacted message log"
    );
    Ok(removed)
}

#[cfg(test)]
mod tests;
