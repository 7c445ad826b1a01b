//! The index's public vocabulary: options callers pass in, and the reports and hits they get back.
//!
//! Everything a caller receives is `Serialize`, so a frontend can print it as JSON lines as is.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Lang, SymbolKind};

/// How `index_repo` works.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Which files the walker visits.
    pub walk: crate::walk::WalkOptions,
    /// Threads that read, hash and parse files (0: `walk.threads`, and when that is 0 too, one per core). Files are
    /// parsed on the walker's threads as they are read.
    pub parse_threads: usize,
    /// Tantivy indexing threads (0: chosen from the core count). Like `writer_memory`, this takes effect when the
    /// process first writes to the index: the writer is created once and kept.
    pub index_threads: usize,
    /// Memory the Tantivy writer may buffer before it writes a segment, in bytes (split between its threads).
    pub writer_memory: usize,
    /// Commit after every this many new or changed files (0: only at the end), so that work done before a crash
    /// is kept: the next run finds those files in the manifest and skips them. Imports are resolved at the end.
    pub commit_every: u64,
    /// Flags that stop the run when any is set (checked before each file): it ends with `Error::Cancelled`, keeping
    /// what its checkpoints committed and nothing after.
    pub cancel: Vec<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            walk: crate::walk::WalkOptions::default(),
            parse_threads: 0,
            index_threads: 0,
            writer_memory: 256 << 20,
            commit_every: 0,
            cancel: Vec::new(),
        }
    }
}

/// What `index_repo` is doing, reported through its progress callback. Files are parsed and indexed while the walk
/// goes on, so the two counters grow together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum IndexProgress {
    /// Reading and indexing, one phase (files are parsed as they are read): `read` of the `total` files the run
    /// will look at (counted before it starts; binary and minified ones among them are skipped), of which
    /// `indexed` were new or changed and are parsed and queued for the index. Every count only grows.
    Files { read: u64, indexed: u64, total: u64 },
    /// A checkpoint: `files` new or changed files of this run are committed, so a run started after a crash
    /// skips them (`IndexOptions::commit_every`).
    Committed { files: u64 },
    /// Everything is queued; Tantivy is writing and committing the segments.
    Committing,
}

/// What one `index_repo` run did.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct IndexReport {
    /// The repository's name in the index.
    pub repo: String,
    /// Files the repository has in the index after the run.
    pub files: u64,
    /// Lines of those files.
    pub lines: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Definitions of those files.
    pub symbols: u64,
    /// Files new since the last run.
    pub added: u64,
    /// Files whose content changed since the last run.
    pub changed: u64,
    /// Files gone since the last run.
    pub deleted: u64,
    /// Files whose content was the same as in the last run (not re-indexed).
    pub unchanged: u64,
    /// Files the walker left out, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Files indexed for text search whose definitions could not be extracted (they have no symbols).
    pub extract_failed: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// Megabytes (10^6 bytes) of re-indexed files per second of wall time.
    pub mb_per_s: f64,
}

/// Narrows a `search`.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// Most hits (lines) returned.
    pub limit: usize,
    /// Only this repository (besides any `repo:` in the query).
    pub repo: Option<String>,
    /// Only this language (besides any `lang:` in the query).
    pub lang: Option<Lang>,
    /// Only paths matching this glob or containing this text (besides any `path:` in the query).
    pub path: Option<String>,
    /// How much work the search may do before it gives up.
    pub budget: Budget,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            limit: 20,
            repo: None,
            lang: None,
            path: None,
            budget: Budget::default(),
        }
    }
}

/// Bounds on one query's work. A query past a bound stops at its next check (between files, and every few
/// thousand lines within one) and fails with [`crate::Error::Timeout`], [`crate::Error::TooExpensive`] or
/// [`crate::Error::Cancelled`]; a regular expression too big to run cheaply is refused before any work.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Wall time from the start of the query.
    pub timeout: Option<Duration>,
    /// Bytes of file text the query may verify (a stand-in for lines scanned that does not depend on line length).
    pub max_scan_bytes: Option<u64>,
    /// The largest regular expression, in states after repetitions are expanded (`a{1000}` is 1,000 states). The
    /// time one regex takes over a line grows with its states, and a single match cannot be interrupted.
    pub max_regex_states: Option<u64>,
    /// The query stops when any of these is set (the caller went away, or the process is shutting down).
    pub cancel: Vec<Arc<AtomicBool>>,
}

impl Default for Budget {
    /// The swarm's defaults: 5 s, 1 GiB of text, 2,000 regex states (see [`crate::query::regex_states`]), no
    /// cancellation.
    fn default() -> Self {
        Budget {
            timeout: Some(Duration::from_secs(5)),
            max_scan_bytes: Some(1 << 30),
            max_regex_states: Some(2_000),
            cancel: Vec::new(),
        }
    }
}

impl Budget {
    /// No bounds at all.
    pub fn unlimited() -> Budget {
        Budget {
            timeout: None,
            max_scan_bytes: None,
            max_regex_states: None,
            cancel: Vec::new(),
        }
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.iter().any(|c| c.load(Ordering::Relaxed))
    }
}

/// One line found by `search`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub repo: String,
    /// Relative to the repository root, `/`-separated.
    pub path: String,
    /// 1-based.
    pub line: u32,
    /// The same as `line`, or the definition's last line when the hit is a definition.
    pub end_line: u32,
    /// Set when the line defines a symbol named by the query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<SymbolKind>,
    /// The defined symbol's name, when `kind` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub lang: Option<Lang>,
    /// The matching line with one line of context on each side, joined with `\n`.
    pub snippet: String,
    /// Higher is better; only comparable within one answer.
    pub score: f32,
    /// How the line matched the query.
    pub matched: LineMatch,
}

/// How a search hit matched, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineMatch {
    /// Every identifier of the query is a whole identifier of the line, or one of its camelCase or snake_case
    /// parts (ranked by BM25).
    Identifier,
    /// The query is text or a regex, and the line holds it.
    Text,
    /// Identifier matches fell short of the limit, and the line holds an identifier of the query as a substring
    /// of a longer word (`ByteStr` in `getCorruptedNodeIdByteString`); ranked below every identifier match.
    Substring,
}

/// Narrows a `symbol` lookup.
#[derive(Debug, Clone)]
pub struct SymbolOptions {
    pub kind: Option<SymbolKind>,
    pub repo: Option<String>,
    pub limit: usize,
}

impl Default for SymbolOptions {
    fn default() -> Self {
        SymbolOptions {
            kind: None,
            repo: None,
            limit: 20,
        }
    }
}

/// How a symbol hit matched the name asked for, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The name is the one asked for (ignoring case; exact case ranks first).
    Exact,
    /// The name starts with the one asked for (ignoring case).
    Prefix,
    /// The name is one or two edits away from the one asked for.
    Fuzzy,
}

/// One definition found by `symbol`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SymbolHit {
    pub repo: String,
    pub path: String,
    pub line: u32,
    pub end_line: u32,
    pub kind: SymbolKind,
    pub name: String,
    pub lang: Option<Lang>,
    pub snippet: String,
    pub score: f32,
    /// How the name matched.
    pub matched: MatchKind,
    /// Edit distance between the name and the one asked for, ignoring case (0 for exact).
    pub distance: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub signature: String,
}

/// One definition of a `symbols` listing (like a line of a tags file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SymbolEntry {
    pub repo: String,
    pub path: String,
    pub lang: Option<Lang>,
    #[serde(flatten)]
    pub definition: crate::model::Definition,
}

/// A file reached by following imports, and how many steps away it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DepEdge {
    pub path: String,
    /// 1 for a direct import or importer.
    pub depth: u32,
}

/// A file's dependencies inside its repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deps {
    pub repo: String,
    pub path: String,
    /// Files this file imports, directly (depth 1) or through others.
    pub imports: Vec<DepEdge>,
    /// Files that import this file, directly (depth 1) or through others.
    pub importers: Vec<DepEdge>,
    /// Modules this file imports that are not files of the repository (standard library, packages).
    pub external: Vec<String>,
}

/// One repository held by the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoInfo {
    pub name: String,
    /// The root directory it was indexed from.
    pub root: PathBuf,
    pub files: u64,
    pub lines: u64,
    pub bytes: u64,
    pub symbols: u64,
    /// When an indexing run last changed it, in seconds since the Unix epoch. A run that finds nothing new,
    /// changed or gone writes nothing, so this is not moved by it.
    pub last_indexed: u64,
}

/// Narrows a `refs` lookup.
#[derive(Debug, Clone)]
pub struct RefsOptions {
    pub repo: Option<String>,
    /// Only uses of this kind.
    pub kind: Option<crate::model::RefKind>,
    /// At most this many uses listed (definitions are listed apart, up to the same number).
    pub limit: usize,
}

impl Default for RefsOptions {
    fn default() -> Self {
        RefsOptions {
            repo: None,
            kind: None,
            limit: 20,
        }
    }
}

/// The definition a line sits in: its innermost enclosing function, method, class, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enclosing {
    pub name: String,
    pub kind: SymbolKind,
    pub line: u32,
}

/// One use of a name found by `refs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefHit {
    pub repo: String,
    pub path: String,
    pub line: u32,
    pub kind: crate::model::RefKind,
    pub lang: Option<Lang>,
    /// The definition the use sits in; `None` at a file's top level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<Enclosing>,
    /// The line with one line of context on each side, joined with `\n`.
    pub snippet: String,
}

/// Where a name is defined and used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refs {
    pub name: String,
    /// Definitions with exactly this name (case included), listed first.
    pub definitions: Vec<SymbolHit>,
    /// Uses, file by file in path order, lines in order; at most the limit.
    pub uses: Vec<RefHit>,
    /// Every use in the index (of the kind asked for), however many are listed.
    pub total: u64,
    /// Files with at least one use.
    pub files: u64,
    /// `total` by kind: calls, type uses, imports.
    pub calls: u64,
    pub types: u64,
    pub imports: u64,
}

/// Narrows an `impact` question.
#[derive(Debug, Clone)]
pub struct ImpactOptions {
    pub repo: Option<String>,
    /// How many steps to follow: importers of importers, users of users (1 to [`MAX_IMPACT_DEPTH`]).
    pub depth: u32,
    /// At most this many files listed.
    pub limit: usize,
}

/// The deepest `impact` follows: beyond it, everything depends on everything.
pub const MAX_IMPACT_DEPTH: u32 = 8;

impl Default for ImpactOptions {
    fn default() -> Self {
        ImpactOptions {
            repo: None,
            depth: 2,
            limit: 50,
        }
    }
}

/// What an `impact` question was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImpactTarget {
    /// A file: its transitive importers may break.
    File { repo: String, path: String },
    /// A name: the definitions that use it, and those that use them, may break.
    Symbol { name: String },
}

/// A definition that uses the target (or a definition that does), with how many uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImpactDef {
    pub name: String,
    pub kind: SymbolKind,
    pub line: u32,
    /// Uses inside it of the names of the step before.
    pub uses: u32,
    /// 1 for a direct use of the target.
    pub depth: u32,
}

/// One file that may break, with what in it may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImpactFile {
    pub repo: String,
    pub path: String,
    /// The fewest steps from the target to this file.
    pub depth: u32,
    /// Uses in this file of the target's names (a file's definitions, or the symbol and its users).
    pub uses: u64,
    /// The definitions in this file that use them; uses at the top level of the file count in `uses` only.
    pub definitions: Vec<ImpactDef>,
}

/// What may break if the target changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Impact {
    pub target: ImpactTarget,
    pub depth: u32,
    /// Files by depth, then by uses (most first), then path; at most the limit.
    pub files: Vec<ImpactFile>,
    /// Every file reached, however many are listed.
    pub total_files: u64,
    /// Every definition reached.
    pub total_definitions: u64,
    /// Every use counted.
    pub total_uses: u64,
    /// Set when the walk stopped early at its bound on files read ([`MAX_IMPACT_FILES`]); the counts are then
    /// lower bounds.
    pub truncated: bool,
}

/// The most files one `impact` question reads; beyond it the answer says it is truncated.
pub const MAX_IMPACT_FILES: usize = 20_000;
