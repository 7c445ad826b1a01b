//! The message log: durable acceptance by group commit, recovery after a crash, history, dead letters, retention.
//!
//! # Layout
//!
//! The log holds *groups*. A group is everything one flush made durable: new messages (each with its resolved
//! recipients) and resolutions (an agent began an attempt at a message, handled it, failed it once, or gave up on
//! it). Its key is a big-endian group number, its value one postcard-encoded [`Group`]. Writing a few hundred
//! records as one sled value with one flush is what makes acceptance fast: sled pays per key and per flush, not
//! per byte.
//!
//! Groups live in *epochs*, one append-only file each in `<data-dir>/log/` ([`segment`]): the writer starts a new
//! epoch when the current one holds a sixteenth of `retention.max_messages` or spans a sixteenth of
//! `retention.max_age`, and retention deletes whole epochs' files. (In sled, as they were kept before, a dropped
//! tree's space came back only when sled cleaned its segments, and the store floated between 2× and 6× the live
//! data; a log of an earlier version is moved into segment files when it is opened.) Everything else (the
//! `log_carried` tree of messages that outlived their epoch, see [`compact`]; dead letters; the audit log) stays
//! in sled.
//!
//! # Guarantees
//!
//! * [`MessageLog::append`] returns only after the group holding the messages is written and, with
//!   `store.sync = "full"`, fdatasynced (its segment file, and sled's file for what was written there before):
//!   an accepted message survives `kill -9` and a power cut.
//! * Admission is bounded: an append that would put more than `store.max_queue_bytes` in front of the writer is
//!   refused with [`Error::Overloaded`] before anything is stored, and no sender waits longer than
//!   `messages.accept_timeout` for its answer.
//! * An agent's acknowledgement and the messages its handler produced (its replies, and notices such as a dead
//!   letter's) are written in the same group, so after a crash either all exist or none does.
//! * An attempt is recorded ([`Outcome::Started`]) durably before a skill runs, so a message whose handling kills
//!   the process is counted, and recovery reports how often it was tried.
//! * After a restart, [`Recovery`] lists every (message, recipient) pair without a resolution, in sequence order:
//!   that is what must be delivered again.
//! * If the store fails (a write or an fdatasync returns an error), the log stops: every waiting sender gets
//!   [`Error::StoreFailed`], nothing more is accepted, and the [`CommitSink`] is told, so that the process can stop
//!   with a clear error. Nothing acknowledged is lost; what was not written is delivered again after the restart.
//!   (After a failed fsync the kernel may have dropped the pages it could not write; retrying is not safe.)
//! * Retention holds whatever is stuck: compaction drops whole groups by count and age, and carries each message
//!   some recipient still owes a verdict on into `log_carried` first (durably), with its state.

mod committer;
mod compact;
mod segment;
mod state;

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use self::state::{HistoryEntry, HistoryPage, HistoryQuery, Receipt, ReceiptStatus};
use self::state::{LogState, CARRIED_TREE, DEAD_TREE};
use self::{segment::Segments, state::Replay};

/// How many epochs a retention bound spans: the count bound is kept to within a sixteenth (an eighth made the
/// store's size move by 12% at each epoch's deletion in the soak).
const EPOCHS_PER_BOUND: u64 = 16;
use crate::{
    config::{MessagesConfig, RetentionConfig, StoreConfig},
    error::{Error, Result},
    message::{AgentName, Envelope, MessageId, Millis, Seq},
    store::{Store, TypedTree},
};

/// Bytes a message's record takes in a group besides its body, at most: ids, addresses, kind, timestamps and
/// recipients (for messages to a handful of agents). Used to bound groups and the writer's queue in bytes.
pub const RECORD_OVERHEAD: usize = 1024;

/// A message as the log keeps it: the envelope and the agents it was resolved to when accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub envelope: Envelope,
    /// The agents that must handle it. Empty for messages to people (`user:…`), which need no handling.
    pub recipients: Vec<AgentName>,
}

impl StoredMessage {
    /// An upper estimate of the bytes its record takes, for the log's bounds (see [`RECORD_OVERHEAD`]).
    pub fn size_hint(&self) -> usize {
        let recipients: usize = self.recipients.iter().map(|a| a.as_str().len() + 1).sum();
        self.envelope.body.len() + self.envelope.kind.len() + recipients + 192
    }
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
    /// Attempt number `attempt` (1 for the first) began. Written before the skill runs, so that an attempt which
    /// takes the process down with it is still counted.
    Started { attempt: u32 },
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

    /// The store failed underneath the log (`error` says how): nothing more will be committed. Called once, after
    /// every earlier commit was reported.
    fn failed(&self, error: &str) {
        let _ = error;
    }
}

/// One (message, agent) pair found unresolved when the log was opened: deliver it again.
#[derive(Debug, Clone)]
pub struct Redelivery {
    pub message: Arc<StoredMessage>,
    pub agent: AgentName,
    /// Attempts recorded before the restart: started ones, including any that the process died in.
    pub attempts: u32,
}

/// What opening the log found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Unresolved deliveries, in sequence order.
    pub redeliveries: Vec<Redelivery>,
    /// Messages found in the log (carried ones included).
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
    /// Bytes waiting for the writer.
    pub queued_bytes: u64,
}

/// Settings of the log, from the `store`, `messages` and `retention` sections.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub max_batch: usize,
    pub max_group_bytes: usize,
    pub max_queue_bytes: usize,
    pub accept_timeout: Duration,
    pub retention_max_messages: u64,
    pub retention_max_age: Duration,
    pub compact_every: Duration,
    pub dead_letters_max: u64,
    pub dead_letters_max_age: Duration,
    pub audit_max_entries: u64,
    pub audit_max_age: Duration,
}

impl LogOptions {
    pub fn new(
        store: &StoreConfig,
        messages: &MessagesConfig,
        retention: &RetentionConfig,
    ) -> LogOptions {
        LogOptions {
            max_batch: store.max_batch,
            max_group_bytes: store.max_group_bytes,
            max_queue_bytes: store.max_queue_bytes,
            accept_timeout: messages.accept_timeout,
            retention_max_messages: retention.max_messages,
            retention_max_age: retention.max_age,
            compact_every: retention.compact_every,
            dead_letters_max: retention.dead_letters_max,
            dead_letters_max_age: retention.dead_letters_max_age,
            audit_max_entries: retention.audit_max_entries,
            audit_max_age: retention.audit_max_age,
        }
    }

    /// The defaults of config/default.toml.
    pub fn defaults() -> LogOptions {
        let config = crate::Config::defaults();
        LogOptions::new(&config.store, &config.messages, &config.retention)
    }
}

/// Where a sender waits for its acceptance.
type AcceptReply = oneshot::Sender<Result<Vec<Accepted>, Error>>;

/// Where a resolution's submitter waits for it to be durable.
type DurableReply = oneshot::Sender<Result<(), Error>>;

/// Work for the writer thread.
enum Submission {
    Append {
        messages: Vec<StoredMessage>,
        /// Counted in the writer's queue until the writer takes it.
        bytes: usize,
        /// `None` for notices that nobody waits for.
        done: Option<AcceptReply>,
    },
    Resolve {
        resolution: Resolution,
        outputs: Vec<StoredMessage>,
        bytes: usize,
        done: Option<DurableReply>,
    },
    /// Flush the store soon, for writes made outside the log (the audit log, the roster).
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

    fn bytes(&self) -> usize {
        match self {
            Submission::Append { bytes, .. } | Submission::Resolve { bytes, .. } => *bytes,
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
    // New variants go last: postcard encodes a variant by its index, and old logs must still decode.
    Started {
        seq: Seq,
        agent: &'a AgentName,
        attempt: u32,
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
    Started {
        seq: Seq,
        agent: AgentName,
        attempt: u32,
    },
}

/// A message that outlived the group it was accepted in, with what its recipients have made of it so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Carried {
    message: StoredMessage,
    /// Recipients still owing a verdict, with the attempts recorded for each.
    pending: Vec<(AgentName, u32)>,
    /// Recipients that gave up on it (its dead letters).
    dead: Vec<AgentName>,
}

/// The durable message log. Cheap to clone.
#[derive(Clone)]
pub struct MessageLog {
    inner: Arc<LogInner>,
}

struct LogInner {
    tx: mpsc::UnboundedSender<Submission>,
    /// Taken by [`MessageLog::start`].
    rx: Mutex<Option<mpsc::UnboundedReceiver<Submission>>>,
    /// Bytes of appends and resolutions submitted and not yet taken by the writer.
    queued_bytes: AtomicUsize,
    state: Mutex<LogState>,
    /// The epochs' files; the last is the one written.
    segments: Segments,
    carried: TypedTree<Carried>,
    dead: TypedTree<DeadLetter>,
    audit: sled::Tree,
    store: Store,
    options: LogOptions,
    closed: AtomicBool,
    /// Why the store failed, once it has: the log then accepts nothing more.
    failure: Mutex<Option<String>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The task that routes commits and answers senders; it ends when the writer does.
    completer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Wakes the compactor early when the log closes.
    compactor_wake: (Mutex<bool>, Condvar),
}

impl LogInner {
    fn failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .as_ref()
            .map(|why| Error::StoreFailed(why.clone()))
    }
}

impl std::fmt::Debug for MessageLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageLog")
            .field("dir", &self.inner.store.dir())
            .finish()
    }
}

impl MessageLog {
    /// Opens the log and replays it. Nothing is written until [`MessageLog::start`].
    pub fn open(store: &Store, options: LogOptions) -> Result<(MessageLog, Recovery)> {
        let dir = store.dir().join(segment::LOG_DIR);
        migrate_sled_epochs(store, &dir)?;
        let carried = store.typed::<Carried>(CARRIED_TREE)?;
        let dead = store.typed::<DeadLetter>(DEAD_TREE)?;
        let audit = store.raw_tree(crate::audit::AUDIT_TREE)?;
        let mut replay = Replay::new(&carried)?;
        let segments = Segments::open(&dir, store.sync_mode(), |frame| replay.group(frame))?;
        let (state, recovery) = replay.finish();
        let (tx, rx) = mpsc::unbounded_channel();
        let log = MessageLog {
            inner: Arc::new(LogInner {
                tx,
                rx: Mutex::new(Some(rx)),
                queued_bytes: AtomicUsize::new(0),
                state: Mutex::new(state),
                segments,
                carried,
                dead,
                audit,
                store: store.clone(),
                options,
                closed: AtomicBool::new(false),
                failure: Mutex::new(None),
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
        // Unbounded in count, bounded in bytes by the writer's queue: one completion per group written.
        let (completer_tx, completer_rx) = mpsc::unbounded_channel();
        let (syncer_tx, syncer_rx) = mpsc::unbounded_channel();
        let completer = runtime.spawn(committer::complete(completer_rx, sink));
        *self.inner.completer.lock() = Some(completer);
        let thread_err = |e| Error::DataDir {
            dir: self.inner.store.dir().to_path_buf(),
            cause: e,
        };
        let inner = self.inner.clone();
        let syncer = std::thread::Builder::new()
            .name("dreamos-log-syncer".to_string())
            .spawn(move || committer::sync_loop(inner, syncer_rx, completer_tx))
            .map_err(thread_err)?;
        let inner = self.inner.clone();
        let writer = std::thread::Builder::new()
            .name("dreamos-log-writer".to_string())
            .spawn(move || committer::run(inner, rx, syncer_tx))
            .map_err(thread_err)?;
        let inner = self.inner.clone();
        let compactor = std::thread::Builder::new()
            .name("dreamos-log-compactor".to_string())
            .spawn(move || compactor_loop(inner))
            .map_err(thread_err)?;
        self.inner
            .threads
            .lock()
            .extend([writer, syncer, compactor]);
        Ok(())
    }

    /// Accepts messages: returns once they are durable, with their sequence numbers, in order.
    ///
    /// Refused at once, with nothing stored, when the log is closed or failed ([`Error::Closed`],
    /// [`Error::StoreFailed`]) or when the writer's queue is full ([`Error::Overloaded`]); answered with
    /// [`Error::AcceptTimeout`] if the store does not confirm within `accept_timeout`.
    pub async fn append(&self, messages: Vec<StoredMessage>) -> Result<Vec<Accepted>> {
        let (done, accepted) = oneshot::channel();
        self.submit_append(messages, Some(done))?;
        let timeout = self.inner.options.accept_timeout;
        match tokio::time::timeout(timeout, accepted).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.inner.failure().unwrap_or(Error::Closed)),
            Err(_) => Err(Error::AcceptTimeout {
                millis: timeout.as_millis() as u64,
            }),
        }
    }

    /// Queues messages that nobody waits for (notices from the swarm to people). They are written with the next
    /// group; admission is bounded like [`MessageLog::append`]'s.
    pub fn append_detached(&self, messages: Vec<StoredMessage>) -> Result<()> {
        self.submit_append(messages, None)
    }

    fn submit_append(&self, messages: Vec<StoredMessage>, done: Option<AcceptReply>) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(failed) = self.inner.failure() {
            return Err(failed);
        }
        let bytes: usize = messages.iter().map(StoredMessage::size_hint).sum();
        let max = self.inner.options.max_queue_bytes;
        let before = self.inner.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        if before + bytes > max && before > 0 {
            self.inner.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(Error::Overloaded {
                what: format!(
                    "the message log's write queue is full ({} bytes waiting, [store] max_queue_bytes = {max})",
                    before
                ),
            });
        }
        self.send(Submission::Append {
            messages,
            bytes,
            done,
        })
    }

    /// Records an agent's verdict on a message, together with the messages its handler produced. Returns once the
    /// writer has it queued; the [`CommitSink`] hears when it is durable. Never refused for a full queue: what is
    /// resolved frees room, and each agent has at most a few resolutions on their way.
    pub fn resolve(&self, resolution: Resolution, outputs: Vec<StoredMessage>) -> Result<()> {
        self.submit_resolve(resolution, outputs, None)
    }

    /// Like [`MessageLog::resolve`], but returns only once the resolution is durable.
    pub async fn resolve_durable(
        &self,
        resolution: Resolution,
        outputs: Vec<StoredMessage>,
    ) -> Result<()> {
        let (done, durable) = oneshot::channel();
        self.submit_resolve(resolution, outputs, Some(done))?;
        match durable.await {
            Ok(answer) => answer,
            Err(_) => Err(self.inner.failure().unwrap_or(Error::Closed)),
        }
    }

    fn submit_resolve(
        &self,
        resolution: Resolution,
        outputs: Vec<StoredMessage>,
        done: Option<DurableReply>,
    ) -> Result<()> {
        if let Some(failed) = self.inner.failure() {
            return Err(failed);
        }
        let bytes = 64 + outputs.iter().map(StoredMessage::size_hint).sum::<usize>();
        self.inner.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        self.send(Submission::Resolve {
            resolution,
            outputs,
            bytes,
            done,
        })
    }

    fn send(&self, submission: Submission) -> Result<()> {
        let bytes = submission.bytes();
        self.inner.tx.send(submission).map_err(|_| {
            self.inner.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            Error::Closed
        })
    }

    /// Asks the writer to flush the store soon, without waiting. Other trees of the store (the audit log) use it
    /// to become durable within milliseconds without a flush of their own on the caller's path.
    pub fn request_flush(&self) {
        let _ = self.inner.tx.send(Submission::Flush);
    }

    /// Waits until everything submitted before this call is durable and the sink has been told.
    pub async fn barrier(&self) -> Result<()> {
        let (done, reached) = oneshot::channel();
        self.inner
            .tx
            .send(Submission::Barrier { done })
            .map_err(|_| Error::Closed)?;
        reached.await.map_err(|_| Error::Closed)?;
        match self.inner.failure() {
            Some(failed) => Err(failed),
            None => Ok(()),
        }
    }

    /// Makes every write to the store made before this call durable — other trees' too, not only what was
    /// submitted to the log — sharing the flush (and fdatasync) with the log's concurrent groups. This is how
    /// state kept beside the log (tasks, frontends' cursors) becomes durable before it is reported.
    pub async fn sync(&self) -> Result<()> {
        self.request_flush();
        self.barrier().await
    }

    /// Stops accepting, writes and flushes everything queued before this call, and stops the threads.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let (done, closed) = oneshot::channel();
        if self.inner.tx.send(Submission::Close { done }).is_ok() {
            let _ = closed.await;
        }
        {
            let (lock, cvar) = &self.inner.compactor_wake;
            *lock.lock() = true;
            cvar.notify_all();
        }
        let threads: Vec<_> = self.inner.threads.lock().drain(..).collect();
        for thread in threads {
            // Every thread has been told to stop (the syncer ends when the writer drops its channel); joining
            // them is quick, but do it off the async runtime.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        // The syncer has exited, dropping its end of the completer's channel: the completer finishes what is
        // queued and ends.
        let completer = self.inner.completer.lock().take();
        if let Some(completer) = completer {
            let _ = completer.await;
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Why the store failed, if it has; the log then accepts nothing more.
    pub fn failure(&self) -> Option<String> {
        self.inner.failure.lock().clone()
    }

    /// A page of history, newest first.
    pub fn history(&self, query: &HistoryQuery) -> Result<HistoryPage> {
        state::history(&self.inner, query)
    }

    /// Messages accepted after `after`, oldest first, at most `limit`: for consumers that follow the log with a
    /// cursor of their own (the Discord outbox). Messages older than retention are gone.
    pub fn read_after(&self, after: Seq, limit: usize) -> Result<Vec<StoredMessage>> {
        state::read_after(&self.inner, after.0, limit)
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
            queued_bytes: self.inner.queued_bytes.load(Ordering::Acquire) as u64,
        }
    }

    /// Enforces the retention bounds now. The compactor thread calls this every `compact_every`.
    pub fn compact(&self) -> Result<compact::Compacted> {
        compact::compact(&self.inner, Millis::now())
    }

    /// Compaction as if the clock read `now`; for tests of age-based retention.
    #[doc(hidden)]
    pub fn compact_at(&self, now: Millis) -> Result<compact::Compacted> {
        compact::compact(&self.inner, now)
    }

    /// Where the log lives, for messages.
    pub fn dir(&self) -> PathBuf {
        self.inner.store.dir().to_path_buf()
    }

    /// Bytes the store takes on disk: the log's segment files and sled's files.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.inner.segments.size() + self.inner.store.size_on_disk()?)
    }
}

/// Moves a log that an earlier version kept in sled trees (`log`, `log.0000000000000001`, ...) into segment files
/// in `dir`, then drops the trees. The files are written into `log.migrating/`, made durable and renamed to
/// `log/` before any tree is dropped: a crash before the rename repeats the migration, one after it only drops
/// the trees again.
fn migrate_sled_epochs(store: &Store, dir: &std::path::Path) -> Result<()> {
    let staging = dir.with_extension("migrating");
    let io_err = |path: &std::path::Path| {
        let dir = path.to_path_buf();
        move |cause| Error::DataDir { dir, cause }
    };
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
    }
    let mut trees: Vec<(u64, String)> = store
        .tree_names()
        .into_iter()
        .filter_map(|name| state::epoch_of(&name).map(|epoch| (epoch, name)))
        .collect();
    if trees.is_empty() {
        return Ok(());
    }
    trees.sort();
    if !dir.exists() {
        let segments = Segments::open(&staging, store.sync_mode(), |_| Ok(()))?;
        let mut groups = 0u64;
        for (epoch, name) in &trees {
            for entry in store.raw_tree(name)?.iter() {
                let (key, bytes) = entry?;
                let mut frame = Segments::frame_buffer(bytes.len());
                frame.extend_from_slice(&bytes);
                segments.append(*epoch, state::key_u64(&key), frame)?;
                groups += 1;
            }
        }
        segments.sync_always()?;
        drop(segments);
        std::fs::rename(&staging, dir).map_err(io_err(dir))?;
        segment::sync_dir(store.dir())?;
        tracing::info!(
            groups,
            epochs = trees.len(),
            "moved the message log out of sled into segment files"
        );
    }
    for (_, name) in &trees {
        store.drop_tree(name)?;
    }
    store.flush()
}

pub use compact::Compacted;

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
        if inner.failure().is_some() {
            return;
        }
        if let Err(err) = compact::compact(&inner, Millis::now()) {
            tracing::error!(error = %err, "message log compaction failed");
        }
    }
}

#[cfg(test)]
mod tests;
