//! Dreamscribe: the swarm's narrative memory.
//!
//! An append-only journal of short readable entries written by people (`/remember`), by agents (the `remember`
//! skill and [`crate::SkillContext::remember`]) and by the swarm itself (the automatic journal, [`journal`]),
//! each tied to the durable ids of the messages, tasks, agents and files it tells about.
//!
//! Three parts, each on its own thread of control:
//! - the **writer** (a tokio task) takes entries and forgets from a bounded queue (`[memory] max_pending`;
//!   beyond it a write is refused `overloaded`), writes a batch of them to sled, makes the batch durable with one
//!   `MessageLog::sync` (shared with the log's own flushes and fdatasyncs), and only then answers: an entry is
//!   durable before it is acknowledged. It also enforces `[retention] memory_*` every `compact_every`.
//! - the **indexer** (a thread) owns the Tantivy writer of `<data-dir>/memory`: it takes what the writer made
//!   durable, and commits at most every `[memory] index_commit_every` while entries keep coming, or at once when a
//!   recall waits for it. The hot path never waits for it; the queue to it is bounded (the writer waits for room,
//!   so its own bounded queue then refuses new work).
//! - **recall** waits until the index holds every entry acknowledged before it was asked (read-your-writes), then
//!   searches on the blocking pool. Results come from sled (the index holds ids), with a snippet.

pub mod index;
pub mod journal;
pub mod semantic;
pub mod skills;

use std::{
    collections::HashSet,
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc as std_mpsc, Arc,
    },
    time::{Duration, Instant},
};

use dreamos_runtime::{
    config::{JournalTopic, MemoryConfig},
    log::MessageLog,
    memory::{check_tags, check_text, Author, Entry, EntryId, EntryKind, Links, MemoryStore},
    message::Millis,
    Store,
};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use ulid::Ulid;

use crate::error::{Error, Result};
use index::{Filters, MemoryIndex, OpenReport, Watermark};

/// The memory's search index directory inside the data directory.
pub const MEMORY_INDEX_DIR: &str = "memory";
/// Entries made durable but not yet in the index, at most; the writer waits beyond it.
const INDEX_QUEUE: usize = 65_536;
/// Writes taken from the queue into one durable batch, at most.
const MAX_BATCH: usize = 1024;
/// The most entries one compaction removes; the next period continues.
const PRUNE_BATCH: usize = 10_000;
/// How long a recall waits for the index to hold what was acknowledged before it.
const FRESH_WAIT: Duration = Duration::from_secs(2);

/// An entry to write: everything but its id and time, which the writer gives it.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub author: Author,
    pub kind: EntryKind,
    pub text: String,
    pub tags: Vec<String>,
    pub links: Links,
}

/// How many of the newest entries [`Memory::written`] looks at.
pub const WRITTEN_SCAN: usize = 2_000;

/// What `/recall` asks for.
#[derive(Debug, Clone, Default)]
pub struct RecallQuery {
    pub words: String,
    pub filters: Filters,
    pub limit: usize,
}

/// One recalled entry.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub entry: Entry,
    pub score: f32,
    /// The best fragment of its text, matched words marked `**like this**`.
    pub snippet: String,
}

/// The answer to a recall.
#[derive(Debug, Clone, Serialize)]
pub struct Recalled {
    pub hits: Vec<Hit>,
    /// Entries that matched, of which `hits` are the best.
    pub matched: usize,
    pub took_ms: f64,
    /// `bm25`, or `bm25+embeddings` when similarity was fused in (see [`semantic`]).
    pub ranked_by: &'static str,
}

/// A page of the journal, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct JournalPage {
    pub entries: Vec<Entry>,
    /// Pass as `before` for the next page; `None` on the last one.
    pub next_before: Option<EntryId>,
}

/// What `/journal` asks for.
#[derive(Debug, Clone, Default)]
pub struct JournalQuery {
    pub agent: Option<String>,
    pub kind: Option<EntryKind>,
    pub before: Option<EntryId>,
    pub limit: usize,
}

/// Counters for `/status` and tests.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryStats {
    /// Entries made durable since the start, and removed (forgotten or by retention).
    pub written: u64,
    pub removed: u64,
    /// Automatic journal entries dropped because the writer's queue was full.
    pub journal_dropped: u64,
    /// Entries in sled now.
    pub entries: u64,
    /// How the index was opened at start.
    pub index_open: OpenReport,
}

enum Request {
    Remember {
        entry: NewEntry,
        done: Option<oneshot::Sender<Result<Entry>>>,
    },
    Forget {
        id: EntryId,
        by: Author,
        done: oneshot::Sender<Result<Entry>>,
    },
}

enum IndexMsg {
    Add {
        seq: u64,
        entries: Vec<Entry>,
        _room: OwnedSemaphorePermit,
    },
    Remove {
        seq: u64,
        gone_seq: u64,
        ids: Vec<EntryId>,
    },
    CommitNow,
}

/// The memory. Cheap to clone.
#[derive(Clone)]
pub struct Memory {
    inner: Arc<Inner>,
}

struct Inner {
    config: MemoryConfig,
    topics: HashSet<JournalTopic>,
    store: MemoryStore,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    index: Arc<MemoryIndex>,
    to_index: Mutex<Option<std_mpsc::Sender<IndexMsg>>>,
    /// The last index operation sent, and the last one committed (searchable).
    sent: AtomicU64,
    committed: watch::Receiver<u64>,
    written: AtomicU64,
    removed: AtomicU64,
    entries: AtomicU64,
    journal_dropped: AtomicU64,
    open_report: OpenReport,
    closed: AtomicBool,
    writer_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    indexer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    broadcasts: Mutex<Option<mpsc::Sender<journal::Broadcast>>>,
    journaler: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set when a model tagged `embeddings` is configured.
    semantic: std::sync::OnceLock<Arc<semantic::Semantic>>,
}

/// The retention bounds the writer enforces.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_entries: u64,
    pub max_age: Duration,
    pub every: Duration,
}

impl Memory {
    /// Opens the memory over the store's trees and the index in `index_dir` (catching it up or rebuilding it from
    /// sled; see [`index`]), and starts its writer and indexer. Must be called within a tokio runtime.
    pub async fn open(
        store: &Store,
        index_dir: &Path,
        log: MessageLog,
        config: MemoryConfig,
        retention: Retention,
    ) -> Result<Memory> {
        let trees = MemoryStore::open(store)?;
        let dir = index_dir.to_path_buf();
        let opened = {
            let trees = trees.clone();
            tokio::task::spawn_blocking(move || MemoryIndex::open(&dir, &trees))
                .await
                .map_err(|e| Error::Actor(format!("opening the memory index: {e}")))?
        }
        .map_err(|e| Error::Memory(format!("opening the memory index: {e}")))?;
        let (index, writer, mark, report) = opened;
        match &report.rebuilt {
            Some(why) => tracing::warn!(
                dir = %index_dir.display(), entries = report.entries, ms = report.millis,
                "the memory index was rebuilt from sled: {why}"
            ),
            None => tracing::info!(
                entries = report.entries,
                caught_up = report.caught_up,
                ms = report.millis,
                "memory index opened"
            ),
        }
        let index = Arc::new(index);
        let (committed_tx, committed) = watch::channel(0u64);
        let (to_index, from_writer) = std_mpsc::channel();
        let indexer_thread = {
            let index = index.clone();
            let trees = trees.clone();
            let every = config.index_commit_every;
            std::thread::Builder::new()
                .name("memory-indexer".into())
                .spawn(move || {
                    index_loop(
                        &index,
                        writer,
                        mark,
                        &from_writer,
                        &committed_tx,
                        &trees,
                        every,
                    )
                })
                .map_err(|e| Error::Actor(format!("starting the memory indexer: {e}")))?
        };
        let (tx, rx) = mpsc::channel(config.max_pending);
        let last = trees.last_id()?.map_or(Ulid::nil(), |id| id.0);
        let gone_seq = trees.last_gone_seq()?;
        let count = report.entries;
        let inner = Arc::new(Inner {
            topics: config.journal.iter().copied().collect(),
            config,
            store: trees,
            tx: Mutex::new(Some(tx)),
            index,
            to_index: Mutex::new(Some(to_index)),
            sent: AtomicU64::new(0),
            committed,
            written: AtomicU64::new(0),
            removed: AtomicU64::new(0),
            entries: AtomicU64::new(count),
            journal_dropped: AtomicU64::new(0),
            open_report: report,
            closed: AtomicBool::new(false),
            writer_task: Mutex::new(None),
            indexer_thread: Mutex::new(Some(indexer_thread)),
            broadcasts: Mutex::new(None),
            journaler: Mutex::new(None),
            semantic: std::sync::OnceLock::new(),
        });
        let writer = Writer {
            inner: inner.clone(),
            log,
            last,
            gone_seq,
            retention,
            room: Arc::new(Semaphore::new(INDEX_QUEUE)),
        };
        *inner.writer_task.lock() = Some(tokio::spawn(writer.run(rx)));
        Ok(Memory { inner })
    }

    pub fn config(&self) -> &MemoryConfig {
        &self.inner.config
    }

    /// Checks an entry as `/remember` would: text, tags.
    pub fn check(&self, entry: &mut NewEntry) -> Result<()> {
        check_text(&entry.text, self.inner.config.max_text_bytes).map_err(Error::Invalid)?;
        entry.tags = check_tags(&entry.tags, self.inner.config.max_tags).map_err(Error::Invalid)?;
        Ok(())
    }

    /// Writes an entry; answers once it is durable. Refused (`overloaded`, nothing stored) when the writer's
    /// queue is full.
    pub async fn remember(&self, mut entry: NewEntry) -> Result<Entry> {
        self.check(&mut entry)?;
        let (done, answer) = oneshot::channel();
        self.submit(Request::Remember {
            entry,
            done: Some(done),
        })?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Removes an entry from sled and from the index; answers once that is durable. The removal is itself
    /// journaled (who, which entry, of what kind and author — not its text).
    pub async fn forget(&self, id: EntryId, by: Author) -> Result<Entry> {
        let (done, answer) = oneshot::channel();
        self.submit(Request::Forget { id, by, done })?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    fn submit(&self, request: Request) -> Result<()> {
        let tx = self.inner.tx.lock().clone().ok_or(Error::ShuttingDown)?;
        tx.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Overloaded {
                what: format!(
                    "the memory's writer has {} entries waiting ([memory] max_pending); try again shortly.",
                    self.inner.config.max_pending
                ),
            },
            mpsc::error::TrySendError::Closed(_) => Error::ShuttingDown,
        })
    }

    /// Whether the swarm journals `topic` on its own (`[memory] journal`).
    pub fn journals(&self, topic: JournalTopic) -> bool {
        self.inner.topics.contains(&topic)
    }

    /// Writes an automatic journal entry (author `swarm`, kind `event`) when `topic` is journaled. Never waits:
    /// when the writer's queue is full the entry is dropped and counted.
    pub fn note(&self, topic: JournalTopic, tags: &[&str], text: String, links: Links) {
        if !self.journals(topic) {
            return;
        }
        let mut text = text;
        let max = self.inner.config.max_text_bytes;
        if text.len() > max {
            let mut end = max.saturating_sub(3);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        let entry = NewEntry {
            author: Author::Swarm,
            kind: EntryKind::Event,
            text,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            links,
        };
        if self
            .submit(Request::Remember { entry, done: None })
            .is_err()
        {
            let n = self.inner.journal_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "automatic journal entries dropped: the memory's writer is full or stopping"
                );
            }
        }
    }

    /// Ranks recalls by embeddings too, from now on (once; later calls change nothing).
    pub fn set_semantic(&self, semantic: semantic::Semantic) {
        let _ = self.inner.semantic.set(Arc::new(semantic));
    }

    pub fn get(&self, id: EntryId) -> Result<Option<Entry>> {
        Ok(self.inner.store.get(id)?)
    }

    /// An entry among the newest [`WRITTEN_SCAN`] by `author` with `text` whose links hold every task and message
    /// of `links`: how work that ran again after a crash finds what it already wrote.
    pub fn written(&self, author: &Author, links: &Links, text: &str) -> Result<Option<Entry>> {
        for entry in self.inner.store.newest_first(None).take(WRITTEN_SCAN) {
            let entry = entry?;
            if &entry.author == author
                && entry.text == text
                && links.tasks.iter().all(|t| entry.links.tasks.contains(t))
                && links
                    .messages
                    .iter()
                    .all(|m| entry.links.messages.contains(m))
            {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// The best entries for the query's words, with filters; sees every entry acknowledged before it was asked.
    pub async fn recall(&self, query: RecallQuery) -> Result<Recalled> {
        if query.words.trim().is_empty() {
            return Err(Error::Invalid(
                "give words to search for, such as /recall why we chose sled".to_string(),
            ));
        }
        if let (Some(since), Some(until)) = (query.filters.since, query.filters.until) {
            if since >= until {
                return Err(Error::Invalid(format!(
                    "--since ({}) is not before --until ({}); the range holds nothing",
                    since.rfc3339(),
                    until.rfc3339()
                )));
            }
        }
        let started = Instant::now();
        self.wait_fresh().await;
        let this = self.clone();
        let semantic = self.inner.semantic.get().cloned();
        let limit = query.limit;
        let mut wide = query.clone();
        if semantic.is_some() {
            wide.limit = wide.limit.max(semantic::DEPTH);
        }
        let found = tokio::task::spawn_blocking(move || this.search(&wide))
            .await
            .map_err(|e| Error::Actor(format!("recall: {e}")))??;
        let found = match semantic {
            Some(semantic) => semantic.fuse_with(self, &query, found, limit).await?,
            None => found,
        };
        Ok(Recalled {
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
            ..found
        })
    }

    /// The search itself, on the calling thread (for benchmarks; [`Memory::recall`] runs it on the blocking pool).
    pub fn search(&self, query: &RecallQuery) -> Result<Recalled> {
        let index = &self.inner.index;
        let searcher = index.searcher();
        let Some(q) = index.query(&searcher, &query.words, &query.filters) else {
            return Err(Error::Invalid(format!(
                "`{}` has only words too common to search for (the, and, of, ...); add a word that says what you look for",
                query.words.trim()
            )));
        };
        let (top, matched) = index
            .top(&searcher, &q, query.limit)
            .map_err(|e| Error::Memory(format!("searching the memory index: {e}")))?;
        let snippets = index.snippets(&searcher, &q);
        let mut hits = Vec::with_capacity(top.len());
        for (score, id) in top {
            // Forgotten between the index's commit and now: skip it (sled is the truth).
            if let Some(entry) = self.inner.store.get(id)? {
                let snippet = index::snippet(snippets.as_ref(), &entry.text);
                hits.push(Hit {
                    entry,
                    score,
                    snippet,
                });
            }
        }
        Ok(Recalled {
            hits,
            matched,
            took_ms: 0.0,
            ranked_by: "bm25",
        })
    }

    /// Waits (at most [`FRESH_WAIT`]) until the index has committed everything sent to it before this call.
    async fn wait_fresh(&self) {
        let target = self.inner.sent.load(Ordering::Acquire);
        let mut committed = self.inner.committed.clone();
        if *committed.borrow() >= target {
            return;
        }
        if let Some(tx) = self.inner.to_index.lock().as_ref() {
            let _ = tx.send(IndexMsg::CommitNow);
        }
        let wait = committed.wait_for(|c| *c >= target);
        if tokio::time::timeout(FRESH_WAIT, wait).await.is_err() {
            tracing::warn!(
                target,
                "the memory index did not catch up in time; recalling from what it has"
            );
        }
    }

    /// A page of the journal, newest first, with filters.
    pub fn journal(&self, query: &JournalQuery) -> Result<JournalPage> {
        let mut entries = Vec::with_capacity(query.limit.min(1000));
        let mut next_before = None;
        for entry in self.inner.store.newest_first(query.before) {
            let entry = entry?;
            if query.kind.is_some_and(|k| k != entry.kind) {
                continue;
            }
            if let Some(agent) = &query.agent {
                if !entry.agents().any(|a| a == agent) {
                    continue;
                }
            }
            if entries.len() == query.limit {
                next_before = entries.last().map(|e: &Entry| e.id);
                break;
            }
            entries.push(entry);
        }
        Ok(JournalPage {
            entries,
            next_before,
        })
    }

    pub fn stats(&self) -> MemoryStats {
        MemoryStats {
            written: self.inner.written.load(Ordering::Relaxed),
            removed: self.inner.removed.load(Ordering::Relaxed),
            journal_dropped: self.inner.journal_dropped.load(Ordering::Relaxed),
            entries: self.inner.entries.load(Ordering::Relaxed),
            index_open: self.inner.open_report.clone(),
        }
    }

    /// The search index, for tests and benchmarks that compare with a raw query.
    #[doc(hidden)]
    pub fn index(&self) -> &MemoryIndex {
        &self.inner.index
    }

    /// Stops taking writes, finishes those queued (durably), commits the index and stops the indexer.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // The journaler ends when its channel closes, writing what it still counted; it holds the memory (and so
        // sled's trees) until then, so it is waited for before the writer stops.
        self.inner.broadcasts.lock().take();
        let journaler = self.inner.journaler.lock().take();
        if let Some(journaler) = journaler {
            let _ = journaler.await;
        }
        self.inner.tx.lock().take();
        let task = self.inner.writer_task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.inner.to_index.lock().take();
        let thread = self.inner.indexer_thread.lock().take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

struct Writer {
    inner: Arc<Inner>,
    log: MessageLog,
    /// The newest id given; ids only grow, also across restarts.
    last: Ulid,
    gone_seq: u64,
    retention: Retention,
    room: Arc<Semaphore>,
}

type SyncFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = dreamos_runtime::Result<()>> + Send>>;

/// Waits for the sync in flight; never resolves when there is none.
async fn wait_sync(in_flight: &mut Option<(Staged, SyncFuture)>) -> dreamos_runtime::Result<()> {
    match in_flight {
        Some((_, sync)) => sync.as_mut().await,
        None => std::future::pending().await,
    }
}

/// What was written to sled since the last sync began: its changes in order (for the indexer) and its answers.
#[derive(Default)]
struct Staged {
    changes: Vec<Change>,
    answers: Vec<(oneshot::Sender<Result<Entry>>, Result<Entry>)>,
    added: u64,
    removed: u64,
}

/// What one batch wrote, in order, for the indexer.
enum Change {
    Added(Vec<Entry>),
    Removed(Vec<EntryId>, u64),
}

impl Writer {
    /// Group commit, pipelined: requests are written to sled as they come; one `MessageLog::sync` at a time is in
    /// flight, covering everything written before it began, and while it runs the next group is written. Each
    /// group is answered (and handed to the indexer) once its sync is done.
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut prune = tokio::time::interval(self.retention.every);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut staged = Staged::default();
        let mut in_flight: Option<(Staged, SyncFuture)> = None;
        let mut open = true;
        loop {
            if in_flight.is_none() && !staged.changes.is_empty() {
                let log = self.log.clone();
                let group = std::mem::take(&mut staged);
                in_flight = Some((group, Box::pin(async move { log.sync().await })));
            } else if in_flight.is_none() && !staged.answers.is_empty() {
                // Only refusals (an unknown id to forget, say): nothing to make durable.
                for (done, result) in std::mem::take(&mut staged.answers) {
                    let _ = done.send(result);
                }
            }
            if !open && in_flight.is_none() {
                break;
            }
            tokio::select! {
                request = rx.recv(), if open => match request {
                    Some(r) => {
                        let mut batch = vec![r];
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(r) => batch.push(r),
                                Err(_) => break,
                            }
                        }
                        self.stage(batch, false, &mut staged);
                    }
                    None => open = false,
                },
                // Nothing to enforce on an empty memory: no timer then (it would only wake the runtime).
                _ = prune.tick(), if open && self.inner.entries.load(Ordering::Relaxed) > 0 => {
                    self.stage(Vec::new(), true, &mut staged)
                }
                result = wait_sync(&mut in_flight) => {
                    if let Some((group, _)) = in_flight.take() {
                        self.complete(group, result).await;
                    }
                }
            }
        }
    }

    fn next_id(&mut self) -> EntryId {
        let now = Millis::now().0;
        let id = if now > self.last.timestamp_ms() {
            Ulid::from_parts(now, rand::random::<u128>())
        } else {
            self.last
                .increment()
                .unwrap_or_else(|| Ulid::from_parts(self.last.timestamp_ms() + 1, 0))
        };
        self.last = id;
        EntryId(id)
    }

    /// Writes a batch to sled (not yet durable) into `staged`; refusals are answered with the group.
    fn stage(&mut self, batch: Vec<Request>, pruning: bool, staged: &mut Staged) {
        let Staged {
            changes,
            answers,
            added,
            removed,
        } = staged;
        let store = self.inner.store.clone();
        if pruning {
            match self.prune_ids() {
                Ok(ids) if !ids.is_empty() => {
                    self.gone_seq += 1;
                    match store.remove(&ids, self.gone_seq) {
                        Ok(gone) => {
                            *removed += gone.len() as u64;
                            tracing::debug!(
                                entries = gone.len(),
                                "memory retention removed entries"
                            );
                            changes.push(Change::Removed(ids, self.gone_seq));
                        }
                        Err(e) => tracing::error!(error = %e, "memory retention failed"),
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "memory retention failed"),
            }
        }
        for request in batch {
            match request {
                Request::Remember { entry, done } => {
                    let entry = Entry {
                        id: self.next_id(),
                        author: entry.author,
                        kind: entry.kind,
                        text: entry.text,
                        tags: entry.tags,
                        links: entry.links,
                    };
                    match store.insert(&entry) {
                        Ok(()) => {
                            *added += 1;
                            push_added(changes, entry.clone());
                            if let Some(done) = done {
                                answers.push((done, Ok(entry)));
                            }
                        }
                        Err(e) => {
                            if let Some(done) = done {
                                answers.push((done, Err(e.into())));
                            }
                        }
                    }
                }
                Request::Forget { id, by, done } => {
                    let existing = match store.get(id) {
                        Ok(Some(e)) => e,
                        Ok(None) => {
                            answers.push((done, Err(Error::UnknownEntry { id: id.to_string() })));
                            continue;
                        }
                        Err(e) => {
                            answers.push((done, Err(e.into())));
                            continue;
                        }
                    };
                    self.gone_seq += 1;
                    if let Err(e) = store.remove(&[id], self.gone_seq) {
                        answers.push((done, Err(e.into())));
                        continue;
                    }
                    *removed += 1;
                    changes.push(Change::Removed(vec![id], self.gone_seq));
                    // The removal is journaled in the same batch: never its text, which was to be forgotten.
                    let note = Entry {
                        id: self.next_id(),
                        author: Author::Swarm,
                        kind: EntryKind::Event,
                        text: format!(
                            "{by} forgot entry {id} (a {} by {} from {})",
                            existing.kind,
                            existing.author,
                            existing.at().rfc3339()
                        ),
                        tags: vec!["forget".to_string()],
                        links: Links {
                            agents: existing
                                .author
                                .agent()
                                .map(str::to_string)
                                .into_iter()
                                .collect(),
                            ..Links::default()
                        },
                    };
                    if store.insert(&note).is_ok() {
                        *added += 1;
                        push_added(changes, note);
                    }
                    answers.push((done, Ok(existing)));
                }
            }
        }
    }

    /// Answers a group whose sync ended, and hands what it wrote to the indexer.
    async fn complete(&mut self, group: Staged, synced: dreamos_runtime::Result<()>) {
        let Staged {
            changes,
            answers,
            added,
            removed,
        } = group;
        if let Err(e) = synced {
            // Written but not known to be durable: nobody is told it was. The index learns of it (if it survived)
            // when it catches up at the next start.
            let error = Error::from(e);
            for (done, result) in answers {
                let _ = done.send(result.and(Err(Error::Memory(format!(
                    "the entry may not have been stored: {error}"
                )))));
            }
            return;
        }
        let i = &self.inner;
        i.entries.fetch_add(added, Ordering::Relaxed);
        i.entries.fetch_sub(
            removed.min(i.entries.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        for change in changes {
            let message = match change {
                Change::Added(entries) => {
                    let Ok(room) = self
                        .room
                        .clone()
                        .acquire_many_owned(entries.len().min(INDEX_QUEUE) as u32)
                        .await
                    else {
                        break;
                    };
                    let seq = i.sent.load(Ordering::Relaxed) + 1;
                    IndexMsg::Add {
                        seq,
                        entries,
                        _room: room,
                    }
                }
                Change::Removed(ids, gone_seq) => IndexMsg::Remove {
                    seq: i.sent.load(Ordering::Relaxed) + 1,
                    gone_seq,
                    ids,
                },
            };
            let sent = match i.to_index.lock().as_ref() {
                Some(tx) => tx.send(message).is_ok(),
                None => false,
            };
            if sent {
                i.sent.fetch_add(1, Ordering::AcqRel);
            }
        }
        // Counted once the indexer has them: a recall from now on waits for them.
        i.written.fetch_add(added, Ordering::Relaxed);
        i.removed.fetch_add(removed, Ordering::Relaxed);
        for (done, result) in answers {
            let _ = done.send(result);
        }
    }

    /// The oldest entries past `[retention] memory_max` or older than `memory_max_age`, at most [`PRUNE_BATCH`].
    fn prune_ids(&self) -> dreamos_runtime::Result<Vec<EntryId>> {
        let entries = self.inner.entries.load(Ordering::Relaxed);
        let over = entries.saturating_sub(self.retention.max_entries) as usize;
        let cutoff = Millis::now().saturating_sub(self.retention.max_age);
        let oldest = self.inner.store.oldest_ids(PRUNE_BATCH)?;
        Ok(oldest
            .into_iter()
            .enumerate()
            .take_while(|(i, id)| *i < over || id.time() < cutoff)
            .map(|(_, id)| id)
            .collect())
    }
}

fn push_added(changes: &mut Vec<Change>, entry: Entry) {
    match changes.last_mut() {
        Some(Change::Added(entries)) => entries.push(entry),
        _ => changes.push(Change::Added(vec![entry])),
    }
}

/// The indexer thread: applies what the writer made durable and commits it, at most every `every` while work
/// keeps coming, at once when a recall asks.
fn index_loop(
    index: &MemoryIndex,
    mut writer: tantivy::IndexWriter,
    mut mark: Watermark,
    rx: &std_mpsc::Receiver<IndexMsg>,
    committed: &watch::Sender<u64>,
    store: &MemoryStore,
    every: Duration,
) {
    let mut dirty: Option<u64> = None;
    let mut asked = false;
    let mut last_commit = Instant::now();
    let mut open = true;
    while open {
        let message = match dirty {
            Some(_) if !asked => {
                match rx.recv_timeout(every.saturating_sub(last_commit.elapsed())) {
                    Ok(m) => Some(m),
                    Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                        open = false;
                        None
                    }
                }
            }
            Some(_) => None,
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => {
                    open = false;
                    None
                }
            },
        };
        let mut next = message;
        // Take everything already queued before deciding to commit.
        while let Some(message) = next.take().or_else(|| rx.try_recv().ok()) {
            match message {
                IndexMsg::Add { seq, entries, .. } => {
                    if let Err(e) = index.add(&mut writer, &entries) {
                        tracing::error!(error = %e, "adding entries to the memory index failed; it is rebuilt at the next start");
                    }
                    if let Some(last) = entries.last() {
                        mark.last_id = Some(last.id);
                    }
                    dirty = Some(seq);
                }
                IndexMsg::Remove { seq, gone_seq, ids } => {
                    index.remove(&mut writer, &ids);
                    mark.gone_seq = gone_seq;
                    dirty = Some(seq);
                }
                IndexMsg::CommitNow => asked = true,
            }
        }
        if let Some(seq) = dirty {
            if asked || !open || last_commit.elapsed() >= every {
                match index.commit(&mut writer, mark) {
                    Ok(()) => {
                        committed.send_replace(seq);
                        if let Err(e) = store.trim_gone(mark.gone_seq) {
                            tracing::warn!(error = %e, "trimming the memory's removal records failed");
                        }
                        dirty = None;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "committing the memory index failed; retrying")
                    }
                }
                last_commit = Instant::now();
                asked = false;
            }
        } else {
            asked = false;
        }
    }
    if let Err(e) = writer.wait_merging_threads() {
        tracing::warn!(error = %e, "the memory index's merges did not finish");
    }
}

#[cfg(test)]
mod tests;
