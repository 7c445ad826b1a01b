//! Writing: incremental indexing of a repository, watch updates and removal, each landing in one Tantivy commit.
//!
//! The manifest is the index itself: every file has a small `info` document holding its content hash. A run reads
//! those, walks the repository, hashes each file's text with blake3, and re-indexes only files that are new or
//! whose hash differs; files that are gone are deleted. Dependency targets depend on which files exist, so after
//! any change every file's imports are resolved again and only `info` documents whose targets moved are
//! rewritten. All deletes and additions of a run go to the writer before one `commit`: a crash before it leaves
//! the previous state, and after it searches see the whole run at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tantivy::collector::DocSetCollector;
use tantivy::indexer::UserOperation;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{IndexWriter, Searcher, TantivyDocument, Term};

use super::held::HeldSymbols;
use super::schema::{file_key, Fields, FileDef, KIND_CHUNK, KIND_FILE, KIND_INFO, KIND_REPO};
use super::{
    check_repo_name, stored_json, stored_str, tantivy_err, IndexOptions, IndexProgress,
    IndexReport, Inner, RepoInfo,
};
use crate::deps::{Resolver, Target};
use crate::error::{Error, Result};
use crate::model::{Definition, FileFacts, Import, Lang, RefKind, Reference};
use crate::walk::{self, ReadOutcome, SourceFile};

/// How the Tantivy writer is set up the first time this process writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterSettings {
    /// Indexing threads.
    pub threads: usize,
    /// Memory budget for all threads together, in bytes.
    pub memory: usize,
}

impl WriterSettings {
    /// Settings from indexing options, picking thread counts from the machine when they are 0.
    pub fn from_options(opts: &IndexOptions) -> WriterSettings {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = if opts.index_threads > 0 {
            opts.index_threads
        } else {
            // Parsing runs beside indexing; half the cores for Tantivy keeps both busy.
            (cores / 2).clamp(1, 4)
        };
        WriterSettings {
            threads,
            memory: opts.writer_memory,
        }
    }

    /// Tantivy wants at least 15 MB per thread.
    pub fn memory_per_thread(&self) -> usize {
        (self.memory / self.threads.max(1)).max(15 << 20)
    }
}

/// What a watch update (or any `update_files` call) changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchUpdate {
    pub repo: String,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub deleted: Vec<String>,
    /// Files that were looked at but had the same content as indexed.
    pub unchanged: u64,
}

/// Each file's resolved dependencies: path → (files of the repository it imports, external imports).
pub(crate) type TargetsByFile = BTreeMap<String, (Vec<String>, Vec<String>)>;

/// Details of a file kept in its `info` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InfoDetails {
    lang: Option<Lang>,
    lines: u64,
    bytes: u64,
    symbols: u64,
    imports: Vec<Import>,
    /// Imports that are not files of the repository.
    external: Vec<String>,
    /// Files of the repository this file imports, relative paths.
    targets: Vec<String>,
    /// The text of a `Cargo.toml` or `go.mod`: resolving imports needs it, and it must not require reading the
    /// stored content of every unchanged file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manifest: Option<String>,
}

/// A file's manifest entry, read back from the index.
#[derive(Debug, Clone)]
struct Known {
    hash: String,
    details: InfoDetails,
}

/// Stored on the repository's `repo` document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RepoDetails {
    root: PathBuf,
    last_indexed: u64,
    /// The repository's totals as of this commit, so that listing repositories reads one document per repository
    /// rather than every file's manifest entry. Missing in indexes written before it was kept; then the manifest
    /// is summed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totals: Option<RepoTotals>,
}

/// What a repository holds, summed over its files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct RepoTotals {
    files: u64,
    lines: u64,
    bytes: u64,
    symbols: u64,
}

impl RepoTotals {
    /// Counts one more file.
    fn add(&mut self, details: &InfoDetails) {
        self.files += 1;
        self.lines += details.lines;
        self.bytes += details.bytes;
        self.symbols += details.symbols;
    }
}

fn hash_text(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn term_query(field: tantivy::schema::Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

/// Every live document of `kind` in `repo`.
pub(crate) fn docs_of(
    searcher: &Searcher,
    f: &Fields,
    kind: &str,
    repo: &str,
) -> Result<Vec<TantivyDocument>> {
    let query = BooleanQuery::new(vec![
        (Occur::Must, term_query(f.kind, kind)),
        (Occur::Must, term_query(f.repo, repo)),
    ]);
    let addrs = searcher
        .search(&query, &DocSetCollector)
        .map_err(tantivy_err("listing documents"))?;
    let mut addrs: Vec<_> = addrs.into_iter().collect();
    addrs.sort();
    addrs
        .into_iter()
        .map(|a| {
            searcher
                .doc(a)
                .map_err(tantivy_err("reading a stored document"))
        })
        .collect()
}

/// The manifest of `repo`: relative path → hash and details.
fn manifest(searcher: &Searcher, f: &Fields, repo: &str) -> Result<BTreeMap<String, Known>> {
    let mut out = BTreeMap::new();
    for doc in docs_of(searcher, f, KIND_INFO, repo)? {
        let path = stored_str(&doc, f.path)
            .ok_or_else(|| Error::Corrupt("an info document has no path".to_string()))?
            .to_string();
        let hash = stored_str(&doc, f.hash).unwrap_or("").to_string();
        let details: InfoDetails = stored_json(&doc, f.info_json, "file info")?;
        out.insert(path, Known { hash, details });
    }
    Ok(out)
}

fn repo_details(searcher: &Searcher, f: &Fields, repo: &str) -> Result<Option<RepoDetails>> {
    let docs = docs_of(searcher, f, KIND_REPO, repo)?;
    match docs.last() {
        Some(doc) => Ok(Some(stored_json(doc, f.repo_json, "repository details")?)),
        None => Ok(None),
    }
}

/// The repository name to use: `name`, or the root directory's name when `name` is empty.
fn repo_name(name: &str, root: &Path) -> Result<String> {
    let name = if name.is_empty() {
        root.file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::RepoName {
                name: root.display().to_string(),
                why: "the root directory has no usable name; give one".to_string(),
            })?
            .to_string()
    } else {
        name.to_string()
    };
    check_repo_name(&name)?;
    Ok(name)
}

pub(crate) fn index_repo(
    inner: &Inner,
    name: &str,
    root: &Path,
    opts: &IndexOptions,
    progress: &(dyn Fn(IndexProgress) + Sync),
) -> Result<IndexReport> {
    let started = Instant::now();
    let root = root.canonicalize().map_err(|cause| Error::Io {
        path: root.to_path_buf(),
        cause,
    })?;
    let name = repo_name(name, &root)?;
    let mut guard = inner.writer(WriterSettings::from_options(opts))?;
    let writer = guard
        .as_mut()
        .ok_or_else(|| Error::Corrupt("the writer vanished".to_string()))?;
    // Another writer of this process may have committed since the reader last reloaded.
    inner.reload()?;
    let searcher = inner.reader.searcher();
    let known = manifest(&searcher, &inner.fields, &name)?;
    let previous = repo_details(&searcher, &inner.fields, &name)?;
    let own_dir = own_dir_prefix(inner, &root);
    let run = Run {
        fields: &inner.fields,
        writer: parking_lot::RwLock::new(writer),
        repo: &name,
        known: &known,
        fresh: Mutex::new(Vec::new()),
        checkpointed: Mutex::new(Vec::new()),
        failed: AtomicU64::new(0),
        since_commit: AtomicU64::new(0),
        held: Mutex::new(HeldSymbols::new(&inner.dir)),
    };
    let seen = Mutex::new(BTreeSet::new());
    let unchanged = AtomicU64::new(0);
    let walked = AtomicU64::new(0);
    let new_bytes = AtomicU64::new(0);
    let indexed = AtomicU64::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let mut walk_opts = opts.walk.clone();
    if walk_opts.threads == 0 && opts.parse_threads > 0 {
        walk_opts.threads = opts.parse_threads;
    }
    // The walker reads files on several threads; each new or changed file is parsed and handed to the writer right
    // there, so reading, parsing and Tantivy's indexing threads all overlap and no file waits in memory.
    let cancelled = || opts.cancel.iter().any(|c| c.load(Ordering::Relaxed));
    // The total for progress, from directory entries alone (cheap beside reading and parsing).
    let total = walk::count(&root, &walk_opts).unwrap_or(0);
    // Reports come from several threads; one lock orders them, so each count a listener sees only grows.
    let shown = Mutex::new((0u64, 0u64));
    let files = |read: u64, indexed: u64| {
        let mut shown = shown.lock();
        *shown = (shown.0.max(read), shown.1.max(indexed));
        progress(IndexProgress::Files {
            read: shown.0,
            indexed: shown.1,
            // Files may appear while the run goes on: the total never falls behind what was read.
            total: total.max(shown.0),
        });
    };
    let walked_report = walk::walk(&root, &walk_opts, |file: SourceFile| {
        if cancelled() {
            first_error.lock().get_or_insert(Error::Cancelled);
            return;
        }
        let n = walked.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(256) {
            files(n, indexed.load(Ordering::Relaxed));
        }
        if own_dir
            .as_ref()
            .is_some_and(|d| is_under(&file.rel_path, d))
        {
            return;
        }
        let hash = hash_text(&file.text);
        seen.lock().insert(file.rel_path.clone());
        if known.get(&file.rel_path).is_some_and(|k| k.hash == hash) {
            unchanged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        new_bytes.fetch_add(file.text.len() as u64, Ordering::Relaxed);
        match run.index_file(file, hash) {
            Ok(()) => {
                let done = indexed.fetch_add(1, Ordering::Relaxed) + 1;
                if done.is_multiple_of(64) {
                    files(walked.load(Ordering::Relaxed), done);
                }
                if opts.commit_every > 0 {
                    if let Err(e) = run.checkpoint(opts.commit_every, progress) {
                        first_error.lock().get_or_insert(e);
                    }
                }
            }
            Err(e) => {
                first_error.lock().get_or_insert(e);
            }
        }
    });
    let walk_report = match (walked_report, first_error.into_inner()) {
        (Ok(report), None) => report,
        (Err(e), _) | (Ok(_), Some(e)) => {
            rollback(run.writer.into_inner());
            return Err(e);
        }
    };
    files(
        walked.load(Ordering::Relaxed),
        indexed.load(Ordering::Relaxed),
    );
    let seen = seen.into_inner();
    let deleted: Vec<String> = known
        .keys()
        .filter(|p| !seen.contains(*p))
        .cloned()
        .collect();
    let (added, changed) = {
        let fresh = run.fresh.lock();
        let checkpointed = run.checkpointed.lock();
        let all = || fresh.iter().chain(checkpointed.iter());
        let added = all().filter(|(p, _, _)| !known.contains_key(p)).count() as u64;
        (added, all().count() as u64 - added)
    };
    progress(IndexProgress::Committing);
    let outcome = match run.finish(&root, &deleted, previous.as_ref()) {
        Ok(outcome) => outcome,
        Err(e) => {
            rollback(writer_of(&mut guard));
            return Err(e);
        }
    };
    // After the commit: the run stands whatever the merge does (see `merge`).
    let merged = super::merge::settle(inner, writer_of(&mut guard));
    inner.reload()?;
    if merged > 0 {
        super::merge::collect_garbage(writer_of(&mut guard));
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(IndexReport {
        repo: name,
        files: outcome.totals.files,
        lines: outcome.totals.lines,
        bytes: outcome.totals.bytes,
        symbols: outcome.totals.symbols,
        added,
        changed,
        deleted: deleted.len() as u64,
        unchanged: unchanged.load(Ordering::Relaxed),
        skipped: walk_report
            .skipped
            .iter()
            .map(|(reason, n)| (reason.name().to_string(), *n))
            .collect(),
        extract_failed: outcome.extract_failed,
        seconds,
        mb_per_s: if seconds > 0.0 {
            new_bytes.load(Ordering::Relaxed) as f64 / 1e6 / seconds
        } else {
            0.0
        },
    })
}

/// Where the index's own directory lies inside `root`, as a relative path, when it does. Its files must never be
/// indexed: they change on every commit, so watch mode would otherwise re-index itself forever.
pub(crate) fn own_dir_prefix(inner: &Inner, root: &Path) -> Option<String> {
    let dir = inner.owned.canonicalize().ok()?;
    let rel = dir.strip_prefix(root).ok()?;
    Some(rel_string(rel))
}

/// True when `rel` is `dir` or lies below it (`dir` empty means the whole root).
fn is_under(rel: &str, dir: &str) -> bool {
    dir.is_empty() || rel == dir || rel.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Drops everything added since the last commit, so a failed run leaves the index as it was; the next commit
/// (of a later run) must not carry half of this one.
fn rollback(writer: &mut IndexWriter) {
    // When even the rollback fails, the writer is unusable and Tantivy reports that on the next write.
    let _ = writer.rollback();
}

fn writer_of<'g>(
    guard: &'g mut parking_lot::MutexGuard<'_, Option<IndexWriter>>,
) -> &'g mut IndexWriter {
    guard
        .as_mut()
        .expect("the writer was created before the run and is only taken out when the index closes")
}

/// Totals after a run.
struct Outcome {
    totals: RepoTotals,
    extract_failed: u64,
}

/// One run's state while files are being indexed.
struct Run<'a> {
    fields: &'a Fields,
    /// Files are added under the read lock (from many threads); a checkpoint commits under the write lock, so it
    /// never commits half of a file's documents.
    writer: parking_lot::RwLock<&'a mut IndexWriter>,
    repo: &'a str,
    known: &'a BTreeMap<String, Known>,
    /// Files indexed in this run and not yet committed: path, hash, details (targets not resolved yet).
    fresh: Mutex<Vec<(String, String, InfoDetails)>>,
    /// Files of this run committed by checkpoints, with their info documents (targets not resolved yet).
    checkpointed: Mutex<Vec<(String, String, InfoDetails)>>,
    failed: AtomicU64,
    /// Files indexed since the last checkpoint.
    since_commit: AtomicU64,
    /// Symbol documents of this run's files not yet added (see `held`).
    held: Mutex<HeldSymbols>,
}

/// Adds documents as one batch (one segment, in order).
fn add_batch(writer: &IndexWriter, docs: Vec<TantivyDocument>) -> Result<()> {
    if docs.is_empty() {
        return Ok(());
    }
    writer
        .run(docs.into_iter().map(UserOperation::Add))
        .map_err(tantivy_err("adding a document"))?;
    Ok(())
}

impl Run<'_> {
    /// Commits what this run indexed so far once `every` files are waiting: their info documents (with the hash
    /// the next run's manifest compares) go in with them. Imports are resolved by [`Run::finish`].
    fn checkpoint(&self, every: u64, progress: &(dyn Fn(IndexProgress) + Sync)) -> Result<()> {
        if self.since_commit.fetch_add(1, Ordering::AcqRel) + 1 < every {
            return Ok(());
        }
        let mut writer = self.writer.write();
        // Another thread may have committed while this one waited for the lock.
        if self.since_commit.load(Ordering::Acquire) < every {
            return Ok(());
        }
        self.since_commit.store(0, Ordering::Release);
        self.held.lock().add_to(&writer, self.fields, self.repo)?;
        let batch = std::mem::take(&mut *self.fresh.lock());
        for (path, hash, details) in &batch {
            writer
                .add_document(info_doc(self.fields, self.repo, path, hash, details)?)
                .map_err(tantivy_err("adding a document"))?;
        }
        writer.commit().map_err(tantivy_err("committing"))?;
        let mut checkpointed = self.checkpointed.lock();
        checkpointed.extend(batch);
        progress(IndexProgress::Committed {
            files: checkpointed.len() as u64,
        });
        Ok(())
    }

    /// Parses one new or changed file and adds its documents; callable from many threads at once.
    fn index_file(&self, file: SourceFile, hash: String) -> Result<()> {
        let f = self.fields;
        let guard = self.writer.read();
        let writer: &IndexWriter = &guard;
        if self.known.contains_key(&file.rel_path) {
            // Deleting by key removes the old `file`, `symbol` and `info` documents. A delete only affects
            // documents added before it, so the new ones added next survive.
            writer.delete_term(Term::from_field_text(
                f.key,
                &file_key(self.repo, &file.rel_path),
            ));
        }
        let facts = match file.lang {
            Some(lang) => crate::extract::extract(lang, &file.text).unwrap_or_else(|_| {
                self.failed.fetch_add(1, Ordering::Relaxed);
                FileFacts::default()
            }),
            None => FileFacts::default(),
        };
        let docs = file_docs(
            f,
            self.repo,
            &file.rel_path,
            file.lang,
            &file.text,
            &facts.definitions,
            &facts.references,
        );
        // One batch, so the file and its chunks land in one segment in this order (see `text`).
        add_batch(writer, docs)?;
        self.held.lock().hold(
            &file.rel_path,
            file.lang.map_or("", Lang::name),
            &facts.definitions,
        )?;
        let details = InfoDetails {
            lang: file.lang,
            lines: file.text.lines().count() as u64,
            bytes: file.text.len() as u64,
            symbols: facts.definitions.len() as u64,
            imports: facts.imports,
            external: Vec::new(),
            targets: Vec::new(),
            manifest: Resolver::is_manifest(&file.rel_path).then(|| file.text.clone()),
        };
        self.fresh.lock().push((file.rel_path, hash, details));
        Ok(())
    }

    /// Deletes files that are gone, resolves every file's imports again, writes the `info` documents that changed
    /// and the repository record, and commits.
    /// Deletes what is gone, rewrites the manifest entries whose imports moved, writes the repository's record and
    /// commits. A run that changed nothing (no file new, changed or gone, no import moved, the same root and totals
    /// as `previous`, the record the index holds) writes and commits nothing: a fresh commit would leave a segment of
    /// one document behind, which every later search would open.
    fn finish(
        self,
        root: &Path,
        deleted: &[String],
        previous: Option<&RepoDetails>,
    ) -> Result<Outcome> {
        let f = self.fields;
        let repo = self.repo;
        let writer = self.writer.into_inner();
        self.held.into_inner().add_to(writer, f, repo)?;
        let gone: BTreeSet<&String> = deleted.iter().collect();
        let mut files: BTreeMap<String, (String, InfoDetails, bool)> = self
            .known
            .iter()
            .filter(|(p, _)| !gone.contains(p))
            .map(|(p, k)| (p.clone(), (k.hash.clone(), k.details.clone(), false)))
            .collect();
        let checkpointed = self.checkpointed.into_inner();
        let fresh = self.fresh.into_inner();
        let mut wrote = !deleted.is_empty() || !checkpointed.is_empty() || !fresh.is_empty();
        // Committed by a checkpoint: their info documents exist, rewritten below only if their imports moved.
        for (path, hash, details) in checkpointed {
            files.insert(path, (hash, details, false));
        }
        for (path, hash, details) in fresh {
            files.insert(path, (hash, details, true));
        }
        let mut totals = RepoTotals::default();
        let resolved = resolve_all(&files);
        let mut rewrite = Vec::new();
        for (path, (_, details, is_fresh)) in &mut files {
            let (targets, external) = resolved.get(path).cloned().unwrap_or_default();
            let moved = details.targets != targets || details.external != external;
            details.targets = targets;
            details.external = external;
            if *is_fresh || moved {
                rewrite.push((path.clone(), !*is_fresh));
            }
            totals.add(details);
        }
        let outcome = Outcome {
            totals,
            extract_failed: self.failed.load(Ordering::Relaxed),
        };
        wrote |= !rewrite.is_empty();
        wrote |= !previous.is_some_and(|p| p.root == root && p.totals == Some(totals));
        if !wrote {
            return Ok(outcome);
        }
        for path in deleted {
            writer.delete_term(Term::from_field_text(f.key, &file_key(repo, path)));
        }
        writer.delete_term(Term::from_field_text(f.key, &file_key(repo, "")));
        for (path, existed) in rewrite {
            if existed {
                writer.delete_term(Term::from_field_text(f.info_key, &file_key(repo, &path)));
            }
            let (hash, details, _) = &files[&path];
            writer
                .add_document(info_doc(f, repo, &path, hash, details)?)
                .map_err(tantivy_err("adding a document"))?;
        }
        let mut repo_doc = TantivyDocument::new();
        repo_doc.add_text(f.kind, KIND_REPO);
        repo_doc.add_text(f.repo, repo);
        repo_doc.add_text(f.key, file_key(repo, ""));
        let details = RepoDetails {
            root: root.to_path_buf(),
            last_indexed: now_secs(),
            totals: Some(totals),
        };
        repo_doc.add_text(f.repo_json, to_json(&details)?);
        writer
            .add_document(repo_doc)
            .map_err(tantivy_err("adding a document"))?;
        writer.commit().map_err(tantivy_err("committing"))?;
        Ok(outcome)
    }
}

/// Resolves the imports of every file against the set of files that exist: path → (targets, external).
fn resolve_all(files: &BTreeMap<String, (String, InfoDetails, bool)>) -> TargetsByFile {
    let manifests = files
        .iter()
        .filter_map(|(path, (_, details, _))| Some((path.clone(), details.manifest.clone()?)));
    let resolver = Resolver::new(files.keys().cloned(), manifests);
    files
        .iter()
        .map(|(path, (_, details, _))| {
            let mut targets = Vec::new();
            let mut external = Vec::new();
            if let Some(lang) = details.lang {
                for target in resolver.resolve_all(path, lang, &details.imports) {
                    match target {
                        Target::File(p) => targets.push(p),
                        Target::External(name) => external.push(name),
                    }
                }
            }
            (path.clone(), (targets, external))
        })
        .collect()
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Corrupt(format!("cannot encode JSON: {e}")))
}

/// The documents of one source file that go in together, in this order: the `file` document, then its `chunk`s.
/// Its `symbol` documents are held back (see `held`).
fn file_docs(
    f: &Fields,
    repo: &str,
    path: &str,
    lang: Option<Lang>,
    text: &str,
    defs: &[Definition],
    refs: &[Reference],
) -> Vec<TantivyDocument> {
    let key = file_key(repo, path);
    let lang_name = lang.map_or("", Lang::name);
    let mut docs = Vec::with_capacity(2 + text.len() / super::text::CHUNK_BYTES);
    let mut file = file_part(f, KIND_FILE, repo, path, &key, lang_name);
    file.add_text(f.content, text);
    file.add_text(f.path_tokens, path);
    let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    file.add_text(f.def_tokens, names.join("\n"));
    let compact: Vec<FileDef> = defs
        .iter()
        .map(|d| FileDef {
            name: d.name.clone(),
            kind: d.kind,
            line: d.line,
            end_line: d.end_line,
        })
        .collect();
    // Encoding plain structs of strings and numbers cannot fail.
    file.add_text(
        f.file_defs,
        serde_json::to_string(&compact).unwrap_or_default(),
    );
    // One value per use, so a name's term frequency in the file is how many times it is used that way.
    for r in refs {
        let field = match r.kind {
            RefKind::Call => f.ref_call,
            RefKind::Type => f.ref_type,
            RefKind::Import => f.ref_import,
        };
        file.add_text(field, &r.name);
    }
    file.add_text(f.file_refs, super::refs::encode(refs));
    docs.push(file);
    // The chunks sort right after the file document: that order is how each finds the other (see `text`).
    for (no, (first_line, piece)) in super::text::cut(text).into_iter().enumerate() {
        let mut chunk = file_part(f, KIND_CHUNK, repo, path, &key, lang_name);
        chunk.add_text(f.text, piece);
        chunk.add_text(f.trigrams, piece);
        chunk.add_u64(f.chunk_no, no as u64);
        chunk.add_u64(f.chunk_line, u64::from(first_line));
        docs.push(chunk);
    }
    docs
}

/// A new document of `kind` for one file, with what every document of a file carries: its repository, path and
/// language (the filters of a search) and its key (what deletes the file's documents together).
pub(crate) fn file_part(
    f: &Fields,
    kind: &str,
    repo: &str,
    path: &str,
    key: &str,
    lang: &str,
) -> TantivyDocument {
    let mut doc = TantivyDocument::new();
    doc.add_text(f.kind, kind);
    doc.add_text(f.repo, repo);
    doc.add_text(f.path, path);
    doc.add_text(f.key, key);
    doc.add_text(f.lang, lang);
    doc
}

/// A symbol kind as serde names it (`function`, `type_alias`, ...), for the raw `sym_kind` field.
pub(crate) fn kind_name(kind: crate::model::SymbolKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn info_doc(
    f: &Fields,
    repo: &str,
    path: &str,
    hash: &str,
    details: &InfoDetails,
) -> Result<TantivyDocument> {
    let mut doc = TantivyDocument::new();
    doc.add_text(f.kind, KIND_INFO);
    doc.add_text(f.repo, repo);
    doc.add_text(f.path, path);
    doc.add_text(f.key, file_key(repo, path));
    doc.add_text(f.info_key, file_key(repo, path));
    doc.add_text(f.lang, details.lang.map_or("", Lang::name));
    doc.add_text(f.hash, hash);
    for target in &details.targets {
        doc.add_text(f.dep_target, target);
    }
    doc.add_text(f.info_json, to_json(details)?);
    Ok(doc)
}

/// Re-reads some files of an indexed repository and commits what changed.
pub(crate) fn update_files(inner: &Inner, name: &str, paths: &[PathBuf]) -> Result<WatchUpdate> {
    check_repo_name(name)?;
    let mut guard = inner.writer(WriterSettings::from_options(&IndexOptions::default()))?;
    inner.reload()?;
    let searcher = inner.reader.searcher();
    let f = &inner.fields;
    let previous =
        repo_details(&searcher, f, name)?.ok_or_else(|| Error::UnknownRepo(name.to_string()))?;
    let root = previous.root.clone();
    let known = manifest(&searcher, f, name)?;
    let mut update = WatchUpdate {
        repo: name.to_string(),
        added: vec![],
        changed: vec![],
        deleted: vec![],
        unchanged: 0,
    };
    let mut rels = BTreeSet::new();
    for path in paths {
        let rel = if path.is_absolute() {
            match path.strip_prefix(&root) {
                Ok(rel) => rel_string(rel),
                Err(_) => continue,
            }
        } else {
            rel_string(path)
        };
        if rel.is_empty() {
            continue;
        }
        // A directory that appeared (moved in, unpacked) or vanished stands for every file under it.
        let prefix = format!("{rel}/");
        rels.extend(
            known
                .range(prefix.clone()..)
                .take_while(|(p, _)| p.starts_with(&prefix))
                .map(|(p, _)| p.clone()),
        );
        let abs = root.join(&rel);
        if abs.is_dir() {
            files_under(&abs, &root, &mut rels);
        } else {
            rels.insert(rel);
        }
    }
    let opts = IndexOptions::default();
    let own_dir = own_dir_prefix(inner, &root);
    let mut sources = Vec::new();
    for rel in rels {
        if own_dir.as_ref().is_some_and(|d| is_under(&rel, d)) {
            continue;
        }
        match walk::read_source(&root, &rel, &opts.walk)? {
            ReadOutcome::Source(file) => {
                let hash = hash_text(&file.text);
                match known.get(&rel) {
                    Some(k) if k.hash == hash => update.unchanged += 1,
                    Some(_) => {
                        update.changed.push(rel);
                        sources.push((file, hash));
                    }
                    None => {
                        update.added.push(rel);
                        sources.push((file, hash));
                    }
                }
            }
            // Skipped, ignored or gone: if it was indexed, it must not be any more.
            ReadOutcome::Skipped(_) | ReadOutcome::Ignored | ReadOutcome::Missing => {
                if known.contains_key(&rel) {
                    update.deleted.push(rel);
                }
            }
        }
    }
    if sources.is_empty() && update.deleted.is_empty() {
        return Ok(update);
    }
    let run = Run {
        fields: f,
        writer: parking_lot::RwLock::new(writer_of(&mut guard)),
        repo: name,
        known: &known,
        fresh: Mutex::new(Vec::new()),
        checkpointed: Mutex::new(Vec::new()),
        failed: AtomicU64::new(0),
        since_commit: AtomicU64::new(0),
        held: Mutex::new(HeldSymbols::new(&inner.dir)),
    };
    let mut result = Ok(());
    for (file, hash) in sources {
        result = run.index_file(file, hash);
        if result.is_err() {
            break;
        }
    }
    let finished = result.and_then(|()| run.finish(&root, &update.deleted, Some(&previous)));
    if let Err(e) = finished {
        rollback(writer_of(&mut guard));
        return Err(e);
    }
    inner.reload()?;
    Ok(update)
}

/// Adds every regular file under `dir` (not following links, not entering `.git`) as a relative path; the walker's
/// rules are applied to each one afterwards by `read_source`.
fn files_under(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if entry.file_name() != ".git" {
                files_under(&path, root, out);
            }
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.insert(rel_string(rel));
        }
    }
}

/// A relative path as the index writes it: `/`-separated.
fn rel_string(rel: &Path) -> String {
    rel.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) fn remove_repo(inner: &Inner, name: &str) -> Result<()> {
    check_repo_name(name)?;
    let mut guard = inner.writer(WriterSettings::from_options(&IndexOptions::default()))?;
    let writer = guard
        .as_mut()
        .ok_or_else(|| Error::Corrupt("the writer vanished".to_string()))?;
    writer.delete_term(Term::from_field_text(inner.fields.repo, name));
    writer.commit().map_err(tantivy_err("committing"))?;
    inner.reload()
}

pub(crate) fn repos(inner: &Inner) -> Result<Vec<RepoInfo>> {
    let searcher = inner.reader.searcher();
    let f = &inner.fields;
    let addrs = searcher
        .search(&*term_query(f.kind, KIND_REPO), &DocSetCollector)
        .map_err(tantivy_err("listing repositories"))?;
    let mut names = BTreeSet::new();
    for addr in addrs {
        let doc: TantivyDocument = searcher
            .doc(addr)
            .map_err(tantivy_err("reading a repository"))?;
        if let Some(name) = stored_str(&doc, f.repo) {
            names.insert(name.to_string());
        }
    }
    let mut out = Vec::new();
    for name in names {
        let Some(details) = repo_details(&searcher, f, &name)? else {
            continue;
        };
        let totals = match details.totals {
            Some(totals) => totals,
            None => {
                let mut totals = RepoTotals::default();
                for known in manifest(&searcher, f, &name)?.values() {
                    totals.add(&known.details);
                }
                totals
            }
        };
        out.push(RepoInfo {
            name: name.clone(),
            root: details.root,
            files: totals.files,
            lines: totals.lines,
            bytes: totals.bytes,
            symbols: totals.symbols,
            last_indexed: details.last_indexed,
        });
    }
    Ok(out)
}

pub(crate) fn resolve_path(inner: &Inner, abs: &Path) -> Option<(String, String)> {
    let abs = abs.canonicalize().unwrap_or_else(|_| abs.to_path_buf());
    let repos = repos(inner).ok()?;
    // The deepest root wins when one repository lies inside another.
    repos
        .into_iter()
        .filter_map(|r| {
            let rel = abs.strip_prefix(&r.root).ok()?;
            Some((r.root.components().count(), r.name, rel_string(rel)))
        })
        .max_by_key(|(depth, _, _)| *depth)
        .map(|(_, name, rel)| (name, rel))
}

/// The dependency targets of every file of `repo`, for graph questions.
pub(crate) fn targets_of_repo(inner: &Inner, repo: &str) -> Result<TargetsByFile> {
    let searcher = inner.reader.searcher();
    Ok(manifest(&searcher, &inner.fields, repo)?
        .into_iter()
        .map(|(p, k)| (p, (k.details.targets, k.details.external)))
        .collect())
}
