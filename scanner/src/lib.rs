//! `dreamos-scanner`: a pure library that turns a repository into an index of code, symbols and dependencies.
//!
//! Start with [`model`], the types everything else speaks in.
//! The scanner never spawns actors, never opens sled and never names Discord: paths in, answers out.
//!
//! Reading a repository: [`walk::walk`] yields its text files on every core (honouring `.gitignore`, counting
//! what it skips and why), [`walk::read_source`] reads one file by the same rules; [`extract::extract`] (or a
//! per-thread [`extract::Extractor`]) turns a file into [`model::FileFacts`] with tree-sitter; [`lang`] holds
//! the languages, their grammars and queries.
//! Dependencies: [`deps::Resolver`] maps each import to a file of the repository or an external package,
//! and [`deps::DepGraph`] answers imports, importers (transitively, with distances) and cycles.
//! Asking questions: [`CodeIndex`] is the public face of the Tantivy index ([`index`]): `index_repo` (incremental,
//! one commit per run), `search` in the query language of [`query`], `symbol`, `outline`, `deps`, `cycles`,
//! `symbols`, `repos`, `refs` and `impact`, and `watch` ([`watch`]) to keep a repository fresh as files are saved.

pub mod deps;
pub mod error;
pub mod extract;
pub mod index;
pub mod lang;
pub mod model;
pub mod query;
pub mod walk;
pub mod watch;

pub use error::{Error, Result};
pub use index::{
    Budget, CodeIndex, DepEdge, Deps, Enclosing, Follow, Impact, ImpactDef, ImpactFile,
    ImpactOptions, ImpactTarget, IndexOptions, IndexProgress, IndexReport, LineMatch, MatchKind,
    RefHit, Refs, RefsOptions, RepoInfo, SearchHit, SearchOptions, SymbolEntry, SymbolHit,
    SymbolOptions, WatchUpdate, MAX_IMPACT_DEPTH,
};
pub use watch::{WatchEvent, WatchHandle};
