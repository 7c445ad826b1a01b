//! The scanner's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the scanner. Each variant's text is fit to show a user as is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A file the index keeps beside it could not be written.
    #[error("cannot write {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A search query is malformed; the message says what is wrong and how to write it.
    #[error("bad query: {0}")]
    Query(String),
    /// A query would cost more than its budget allows (a regular expression too large, too much text to verify).
    #[error("the query is too expensive: {0}")]
    TooExpensive(String),
    /// A query ran past its time limit and was stopped.
    #[error("the query was stopped after {} s, its time limit; narrow it (a longer literal, lang:, path: or repo:) or raise the limit ([scanner] query_timeout)", limit.as_secs_f64())]
    Timeout { limit: std::time::Duration },
    /// A query was stopped because its caller went away or the process is shutting down.
    #[error("the query was cancelled")]
    Cancelled,
    /// A repository name is not usable; the message says which characters are allowed.
    #[error("bad repository name {name:?}: {why}")]
    RepoName { name: String, why: String },
    /// A query named a repository the index does not hold.
    #[error("the code index has no repository named {0:?}; index it first (dreamos index, or /index), or list the indexed ones (dreamos repos, or /repos)")]
    UnknownRepo(String),
    /// A path given to outline/deps is not a file of any indexed repository.
    #[error("{0}")]
    UnknownFile(String),
    /// A name that nothing in the index defines or uses; the message suggests names like it.
    #[error("{0}")]
    UnknownSymbol(String),
    /// Another process holds the index's writer lock.
    #[error("the code index at {} is being written by another process; wait for it to finish, or stop it", dir.display())]
    IndexLocked { dir: PathBuf },
    /// Tantivy failed while opening, writing or reading the index.
    #[error("code index error ({context}): {cause}")]
    Index {
        context: String,
        cause: tantivy::TantivyError,
    },
    /// The index holds data this version cannot read (a stored field is missing or malformed).
    #[error("the code index is damaged or from another version ({0}); delete its directory and index again")]
    Corrupt(String),
    /// Watching a repository for changes failed.
    #[error("cannot watch {}: {cause}", root.display())]
    Watch { root: PathBuf, cause: notify::Error },
    /// A language name (as in `lang:rust`) that the scanner does not know.
    #[error("unknown language {0:?}; use one of: rust, python (py), javascript (js), typescript (ts), tsx, go, java, c, cpp (c++)")]
    UnknownLanguage(String),
    /// A language whose grammar was left out of this build by its cargo feature.
    #[error("support for {lang} is not compiled into this build; rebuild dreamos-scanner with the feature {feature}")]
    LanguageDisabled {
        lang: &'static str,
        feature: &'static str,
    },
    /// A tree-sitter query shipped with the scanner does not compile against its grammar (a bug in the scanner).
    #[error("the {lang} query does not compile: {message}")]
    QueryCompile { lang: &'static str, message: String },
    /// Tree-sitter gave up parsing a file (it only does so when cancelled or out of resources).
    #[error("tree-sitter could not parse this {lang} source")]
    Parse { lang: &'static str },
    /// The directory given to the walker cannot be walked.
    #[error("cannot scan {}: {why}", path.display())]
    WalkRoot { path: PathBuf, why: String },
    /// A path given as relative to a repository is not one (absolute, `..`, or empty).
    #[error("bad path {path:?}: {why}")]
    BadPath { path: String, why: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
