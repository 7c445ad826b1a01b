//! The Tantivy code index: one index directory holding many named repositories, and every question asked of it.
//!
//! [`CodeIndex`] is the public face. Reading order for the private modules: `schema` (what is stored and why),
//! `tokenizer` (how code is cut into terms), `writer` (incremental indexing in one commit), `merge` (few segments
//! after a run), `search` (candidates from the index, verified against stored content), `trigram` (what a regex
//! requires), `symbols` and `graph`.

mod ascii;
mod graph;
mod held;
mod merge;
mod refs;
pub(crate) mod schema;
mod search;
mod symbols;
mod text;
pub(crate) mod tokenizer;
pub(crate) mod trigram;
mod types;
mod writer;

#[cfg(test)]
mod ref_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tantivy::directory::error::{LockError, OpenReadError};
use tantivy::schema::Value;
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{
    Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, TantivyDocument, TantivyError,
};

pub use types::{
    Budget, DepEdge, Deps, Enclosing, Impact, ImpactDef, ImpactFile, ImpactOptions, ImpactTarget,
    IndexOptions, IndexProgress, IndexReport, LineMatch, MatchKind, RefHit, Refs, RefsOptions,
    RepoInfo, SearchHit, SearchOptions, SymbolEntry, SymbolHit, SymbolOptions, MAX_IMPACT_DEPTH,
};
pub use writer::{WatchUpdate, WriterSettings};

use crate::error::{Error, Result};
use crate::model::Definition;
use schema::Fields;
use tokenizer::{CodeTokenizer, TrigramTokenizer, CODE_TOKENIZER, TRIGRAM_TOKENIZER};

/// Which commits the searches of a [`CodeIndex`] see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Every commit: this process's at once, another process's within about half a second, because Tantivy watches
    /// `meta.json` on a thread of its own. For a process that runs beside others that write (the swarm).
    AllCommits,
    /// Only this process's own: the index as it was when opened, plus what this process commits. Starts no thread.
    /// For a command that runs once (the command-line tools).
    OwnCommits,
}

/// A code index on disk, shared by clones: open it once, index repositories into it, ask it questions.
///
/// Reading never blocks on writing. Writing takes Tantivy's writer lock the first time this process writes and
/// keeps it until the last clone is dropped, so another process can search the same directory at any time but
/// cannot write to it meanwhile (it gets [`Error::IndexLocked`]).
#[derive(Clone)]
pub struct CodeIndex {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    dir: PathBuf,
    /// The directory never indexed or watched: the index's own, or the data directory holding it.
    owned: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Repositories of an index of another version, made again empty at open (see [`CodeIndex::stale_repos`]).
    stale: Vec<(String, PathBuf)>,
    /// The one Tantivy writer, created on first write. Holding this mutex also serialises whole indexing runs, so
    /// a watch update and an `index_repo` never interleave their deletes and commits.
    writer: Mutex<Option<IndexWriter>>,
    /// meta.json as [`CodeIndex::catch_up`] last saw it before reloading.
    seen_meta: Mutex<Option<MetaStamp>>,
}

/// What tells one meta.json from the next: Tantivy replaces the file (a new inode) at every commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MetaStamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl MetaStamp {
    fn of(path: &Path) -> Option<MetaStamp> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Some(MetaStamp {
            dev,
            ino,
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

impl std::fmt::Debug for CodeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeIndex")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

/// Wraps a Tantivy error with what the index was doing.
pub(crate) fn tantivy_err(context: &str) -> impl FnOnce(TantivyError) -> Error + '_ {
    move |cause| Error::Index {
        context: context.to_string(),
        cause,
    }
}

/// Checks a repository name: 1 to 64 characters among `A-Z a-z 0-9 . _ -`, not `.` or `..`.
pub fn check_repo_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 64 {
        Some("it is longer than 64 characters")
    } else if name == "." || name == ".." {
        Some("it cannot be . or ..")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some("use only letters, digits, '.', '_' and '-' (at most 64)")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(Error::RepoName {
            name: name.to_string(),
            why: why.to_string(),
        }),
    }
}

/// Reads the first text value of `field` in a stored document.
pub(crate) fn stored_str(doc: &TantivyDocument, field: tantivy::schema::Field) -> Option<&str> {
    doc.get_first(field).and_then(|v| v.as_str())
}

/// Reads and parses a stored JSON field, failing with [`Error::Corrupt`] when it is missing or malformed.
pub(crate) fn stored_json<T: serde::de::DeserializeOwned>(
    doc: &TantivyDocument,
    field: tantivy::schema::Field,
    what: &str,
) -> Result<T> {
    let text = stored_str(doc, field)
        .ok_or_else(|| Error::Corrupt(format!("{what} has no stored JSON")))?;
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

impl CodeIndex {
    /// Opens the code index in `dir`, creating the directory and an empty index when there is none.
    pub fn open(dir: &Path) -> Result<CodeIndex> {
        CodeIndex::open_owned(dir, dir)
    }

    /// Like [`CodeIndex::open`], for an index kept inside `owner` (dreamos's data directory, with its store and
    /// logs): nothing under `owner` is ever indexed or watched, so `/index .` beside the data directory does not
    /// index the store. Searches see commits of other processes too ([`Follow::AllCommits`]).
    pub fn open_owned(dir: &Path, owner: &Path) -> Result<CodeIndex> {
        CodeIndex::open_following(dir, owner, Follow::AllCommits)
    }

    /// Like [`CodeIndex::open_owned`], choosing which commits searches see: a command that runs once has no use for
    /// a thread watching for other processes' commits ([`Follow::OwnCommits`]).
    pub fn open_following(dir: &Path, owner: &Path, follow: Follow) -> Result<CodeIndex> {
        std::fs::create_dir_all(dir).map_err(|cause| Error::Io {
            path: dir.to_path_buf(),
            cause,
        })?;
        let (schema, fields) = Fields::build();
        let mut stale = Vec::new();
        let existing = if dir.join("meta.json").exists() {
            let index = Index::open_in_dir(dir).map_err(tantivy_err("opening the index"))?;
            match Fields::from_schema(&index.schema()) {
                Ok(_) => Some(index),
                // Made by another version of the scanner: the index is derived data, so it is made again empty,
                // and the repositories it held are remembered so that they can be indexed again.
                Err(why) => {
                    stale = old_repositories(&index);
                    drop(index);
                    tracing::warn!(dir = %dir.display(), %why, repositories = stale.len(), "the code index was made by another version; making it again");
                    clear_index_dir(dir)?;
                    None
                }
            }
        } else {
            None
        };
        let index = if let Some(index) = existing {
            index
        } else {
            let settings = IndexSettings {
                // Level 3 is zstd's default: a third smaller than lz4 on source code, and decompressing the few
                // documents a query verifies costs microseconds.
                docstore_compression: Compressor::Zstd(ZstdCompressor {
                    compression_level: Some(3),
                }),
                // Larger blocks compress better, and a block holds about two chunks of a large file.
                docstore_blocksize: 16 * 1024,
                ..IndexSettings::default()
            };
            Index::builder()
                .schema(schema)
                .settings(settings)
                .create_in_dir(dir)
                .map_err(tantivy_err("creating the index"))?
        };
        index
            .tokenizers()
            .register(CODE_TOKENIZER, CodeTokenizer::default());
        index
            .tokenizers()
            .register(TRIGRAM_TOKENIZER, TrigramTokenizer::default());
        let reader = again_if_replaced(|| {
            index
                .reader_builder()
                // Commits made by this process reload the reader at once (see `reload`); `OnCommitWithDelay` picks
                // up commits made by another process, with a thread watching meta.json.
                .reload_policy(match follow {
                    Follow::AllCommits => ReloadPolicy::OnCommitWithDelay,
                    Follow::OwnCommits => ReloadPolicy::Manual,
                })
                .try_into()
        })
        .map_err(tantivy_err("opening a reader"))?;
        Ok(CodeIndex {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                owned: owner.to_path_buf(),
                index,
                reader,
                fields,
                writer: Mutex::new(None),
                seen_meta: Mutex::new(MetaStamp::of(&dir.join("meta.json"))),
                stale,
            }),
        })
    }

    /// Makes every commit made so far, by any process, visible to searches from now on: a long-running process
    /// that answers for others (the swarm serving `dreamos search`) calls it before each answer, so that a
    /// `dreamos index` that finished before the question is seen. Costs one `stat` of meta.json when nothing was
    /// committed since the last call; otherwise the reader reloads.
    pub fn catch_up(&self) -> Result<()> {
        let now = MetaStamp::of(&self.inner.dir.join("meta.json"));
        let mut seen = self.inner.seen_meta.lock();
        if now.is_some() && *seen != now {
            // The stamp is taken before the reload: a commit landing in between makes the next call reload again.
            self.inner.reload()?;
            *seen = now;
        }
        Ok(())
    }

    /// The repositories (name, root) that an index made by another version held when this open made it again
    /// empty; index them again to get them back. Empty when the index was this version's.
    pub fn stale_repos(&self) -> &[(String, PathBuf)] {
        &self.inner.stale
    }

    /// The directory this index lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The directory never indexed or watched (see [`CodeIndex::open_owned`]).
    pub fn owned_dir(&self) -> &Path {
        &self.inner.owned
    }

    /// Indexes (or re-indexes) the repository at `root` under `name`. Incremental: only files whose content hash
    /// changed since the last run are parsed and indexed again, deleted files are removed, and the whole run lands in
    /// one commit (a failure or crash before it leaves the previous state).
    /// An empty `name` means the root directory's name.
    pub fn index_repo(
        &self,
        name: &str,
        root: &Path,
        opts: &IndexOptions,
        progress: &(dyn Fn(IndexProgress) + Sync),
    ) -> Result<IndexReport> {
        writer::index_repo(&self.inner, name, root, opts, progress)
    }

    /// Re-reads the given files of an indexed repository (relative or absolute paths; a file that is gone is
    /// removed) and commits, so the change is searchable when this returns. This is what watch mode calls.
    pub fn update_files(&self, name: &str, paths: &[PathBuf]) -> Result<WatchUpdate> {
        writer::update_files(&self.inner, name, paths)
    }

    /// Removes a repository and everything indexed for it.
    pub fn remove_repo(&self, name: &str) -> Result<()> {
        writer::remove_repo(&self.inner, name)
    }

    /// Searches code with the query language of [`crate::query`]; hits are lines, best first.
    pub fn search(&self, query: &str, opts: &SearchOptions) -> Result<Vec<SearchHit>> {
        search::search(&self.inner, query, opts)
    }

    /// Finds definitions by name: exact matches, then prefix matches, then names one or two edits away.
    pub fn symbol(&self, name: &str, opts: &SymbolOptions) -> Result<Vec<SymbolHit>> {
        symbols::symbol(&self.inner, name, opts)
    }

    /// Where a name is used (calls, type uses, imports), definitions first; see [`Refs`].
    pub fn refs(&self, name: &str, opts: &RefsOptions) -> Result<Refs> {
        refs::refs(&self.inner, name, opts)
    }

    /// What may break if `target` changes: a file's transitive importers (with the uses of its names in the
    /// direct ones), or the definitions that use a name and those that use them, `opts.depth` steps out.
    /// `target` is a file when it looks like a path and the index has it, else a symbol name.
    pub fn impact(&self, target: &str, opts: &ImpactOptions) -> Result<Impact> {
        refs::impact(&self.inner, target, opts)
    }

    /// The definitions of one file, in source order. `path` is relative to a repository root (then `repo` may be
    /// needed when several repositories have that path) or an absolute path inside an indexed repository.
    pub fn outline(&self, repo: Option<&str>, path: &str) -> Result<Vec<Definition>> {
        symbols::outline(&self.inner, repo, path)
    }

    /// Every definition of one repository (or all of them), file by file, like a tags file. `visit` is called once
    /// per definition, so a caller can stream them out without holding the whole list.
    pub fn symbols(&self, repo: Option<&str>, visit: &mut dyn FnMut(SymbolEntry)) -> Result<u64> {
        symbols::symbols(&self.inner, repo, visit)
    }

    /// Maps an absolute path inside an indexed repository's root to that repository and the relative path.
    pub fn resolve_path(&self, abs: &Path) -> Option<(String, String)> {
        writer::resolve_path(&self.inner, abs)
    }

    /// Interprets a file argument as people give it: a path on disk inside an indexed repository becomes that
    /// repository and the relative path (unless `repo` names another); anything else is taken as relative to a
    /// repository's root, with `repo` as given.
    pub fn locate(&self, repo: Option<&str>, file: &str) -> (Option<String>, String) {
        self.locate_from(Path::new("."), repo, file)
    }

    /// Like [`CodeIndex::locate`], for a `file` given relative to `cwd` (the working directory of whoever asked,
    /// when it is not this process's).
    pub fn locate_from(
        &self,
        cwd: &Path,
        repo: Option<&str>,
        file: &str,
    ) -> (Option<String>, String) {
        if let Ok(abs) = cwd.join(file).canonicalize() {
            if let Some((found, rel)) = self.resolve_path(&abs) {
                if repo.is_none_or(|r| r == found) {
                    return (Some(found), rel);
                }
            }
        }
        (repo.map(str::to_string), file.to_string())
    }

    /// A file's imports and importers inside its repository, following edges up to `depth` steps (at least 1).
    pub fn deps(&self, repo: Option<&str>, path: &str, depth: u32) -> Result<Deps> {
        graph::deps(&self.inner, repo, path, depth)
    }

    /// The import cycles of a repository, each as the list of files around it.
    pub fn cycles(&self, repo: &str) -> Result<Vec<Vec<String>>> {
        graph::cycles(&self.inner, repo)
    }

    /// Every repository the index holds, by name.
    pub fn repos(&self) -> Result<Vec<RepoInfo>> {
        writer::repos(&self.inner)
    }

    /// Keeps repository `name` (already indexed) fresh as its files change; see [`crate::watch`].
    pub fn watch(
        &self,
        name: &str,
        on_event: impl Fn(crate::watch::WatchEvent) + Send + 'static,
    ) -> Result<crate::watch::WatchHandle> {
        crate::watch::watch(self.clone(), name, Box::new(on_event))
    }
}

/// The repositories an index of another version held, read by field names (best effort: what cannot be read
/// is left out).
fn old_repositories(index: &Index) -> Vec<(String, PathBuf)> {
    let schema = index.schema();
    let (Ok(kind), Ok(repo), Ok(json)) = (
        schema.get_field("kind"),
        schema.get_field("repo"),
        schema.get_field("repo_json"),
    ) else {
        return Vec::new();
    };
    let Ok(reader) = index.reader() else {
        return Vec::new();
    };
    let searcher = reader.searcher();
    let query = tantivy::query::TermQuery::new(
        tantivy::Term::from_field_text(kind, schema::KIND_REPO),
        tantivy::schema::IndexRecordOption::Basic,
    );
    let Ok(addrs) = searcher.search(&query, &tantivy::collector::DocSetCollector) else {
        return Vec::new();
    };
    let mut out = std::collections::BTreeMap::new();
    for addr in addrs {
        let Ok(doc) = searcher.doc::<TantivyDocument>(addr) else {
            continue;
        };
        let name = stored_str(&doc, repo).map(str::to_string);
        let root = stored_str(&doc, json)
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|v| v.get("root").and_then(|r| r.as_str()).map(PathBuf::from));
        if let (Some(name), Some(root)) = (name, root) {
            out.insert(name, root);
        }
    }
    out.into_iter().collect()
}

/// Removes the files of an index directory (Tantivy keeps them flat in it), leaving the directory.
fn clear_index_dir(dir: &Path) -> Result<()> {
    let io = |cause| Error::Io {
        path: dir.to_path_buf(),
        cause,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_file() {
            std::fs::remove_file(entry.path()).map_err(io)?;
        }
    }
    Ok(())
}

impl Inner {
    /// Takes the writer lock of this process, creating Tantivy's writer on first use.
    fn writer(
        &self,
        settings: WriterSettings,
    ) -> Result<parking_lot::MutexGuard<'_, Option<IndexWriter>>> {
        let mut guard = self.writer.lock();
        if guard.is_none() {
            let options = tantivy::indexer::IndexWriterOptions::builder()
                .num_worker_threads(settings.threads)
                .memory_budget_per_thread(settings.memory_per_thread())
                .num_merge_threads(1)
                .build();
            let writer = self
                .index
                .writer_with_options(options)
                .map_err(|e| match e {
                    TantivyError::LockFailure(LockError::LockBusy, _) => Error::IndexLocked {
                        dir: self.dir.clone(),
                    },
                    other => Error::Index {
                        context: "opening the writer".to_string(),
                        cause: other,
                    },
                })?;
            // Holding the writer lock now, this process is the only one that makes held files.
            held::remove_stale(&self.dir);
            *guard = Some(writer);
        }
        Ok(guard)
    }

    /// Makes this process's latest commit visible to searches now rather than after the reload policy's delay.
    fn reload(&self) -> Result<()> {
        again_if_replaced(|| self.reader.reload()).map_err(tantivy_err("reloading the reader"))
    }
}

/// Attempts at opening the segments that meta.json lists, when a file of theirs is gone each time.
const REOPEN_ATTEMPTS: usize = 5;

/// Runs `open` (which reads meta.json, then opens the segments it lists) again when a segment's file is missing.
///
/// Another process may write the same index: its merge at the end of a run (or a commit's clean-up) deletes the
/// files of the segments it replaced, right after writing a meta.json that no longer lists them. A reader that read
/// the older meta.json just before can then find a file gone. Reading meta.json again gives the segments that
/// replaced it, so the next attempt opens files that exist. Once opened, a segment's files are mapped and stay
/// readable whatever is deleted later.
fn again_if_replaced<T>(mut open: impl FnMut() -> tantivy::Result<T>) -> tantivy::Result<T> {
    let mut attempt = 1;
    loop {
        match open() {
            Err(TantivyError::OpenReadError(OpenReadError::FileDoesNotExist(path)))
                if attempt < REOPEN_ATTEMPTS =>
            {
                tracing::debug!(path = %path.display(), attempt, "a segment file was replaced while opening; reading meta.json again");
                attempt += 1;
            }
            other => return other,
        }
    }
}
