//! Code intelligence for the swarm: the scanner's index behind async calls, with the allowed-roots rule.
//!
//! Commands (`/index`, `/search`, ...) and agent skills (`scan`, `search`, ...) both go through [`Code`], so the
//! rules — which directories may be indexed, how many hits a query may ask for — hold everywhere. Scanner work is
//! CPU-bound and blocking, so every call runs on tokio's blocking pool, never on an async worker.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use dreamos_runtime::config::ScannerConfig;
use dreamos_scanner::{
    model::{Definition, Lang, RefKind, SymbolKind},
    Budget, CodeIndex, Deps, Impact, ImpactOptions, IndexOptions, IndexProgress, IndexReport, Refs,
    RefsOptions, RepoInfo, SearchHit, SearchOptions, SymbolHit, SymbolOptions, MAX_IMPACT_DEPTH,
};

use crate::error::{Error, Result};

/// New or changed files between two commits of an indexing run: what a crash can cost.
pub const CHECKPOINT_FILES: u64 = 1_000;

/// The swarm's code index and its rules. Cheap to clone.
#[derive(Clone)]
pub struct Code {
    inner: Arc<CodeInner>,
}

struct CodeInner {
    index: CodeIndex,
    /// Canonical forms of the configured roots that exist.
    allowed: Vec<PathBuf>,
    config: ScannerConfig,
    /// Set at shutdown: every search running or started after stops.
    closing: Arc<AtomicBool>,
}

/// Cancels one query when the call that started it goes away (a frontend gave up, the agent stopped).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Options of a search, as frontends receive them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRequest {
    pub query: String,
    pub lang: Option<String>,
    pub path: Option<String>,
    pub repo: Option<String>,
    pub limit: Option<usize>,
}

impl Code {
    /// Opens (or creates) the index in `dir`. Configured roots that do not exist are left out with a warning.
    pub fn open(dir: &Path, config: &ScannerConfig) -> Result<Code> {
        // The index lives in the data directory; nothing of the data directory is ever indexed.
        let owner = dir.parent().unwrap_or(dir);
        let index = CodeIndex::open_owned(dir, owner)?;
        let mut allowed = Vec::new();
        for root in &config.allowed_roots {
            match root.canonicalize() {
                Ok(root) => allowed.push(root),
                Err(err) => {
                    tracing::warn!(root = %root.display(), error = %err, "an allowed root of [scanner] does not exist; ignoring it")
                }
            }
        }
        let code = Code {
            inner: Arc::new(CodeInner {
                index,
                allowed,
                config: config.clone(),
                closing: Arc::new(AtomicBool::new(false)),
            }),
        };
        code.reindex_stale();
        Ok(code)
    }

    /// The index itself, for readers that apply no rule of their own (the tools served to `dreamos search` and
    /// the like, which only read).
    pub fn code_index(&self) -> &CodeIndex {
        &self.inner.index
    }

    /// An index made by another version was made again empty at open: index its repositories again, in the
    /// background, those whose roots are still allowed. The shutdown stops it at the next file; the next start
    /// sees a current index with whatever was committed, and `/index` brings back the rest.
    fn reindex_stale(&self) {
        let stale: Vec<(String, PathBuf)> = self.inner.index.stale_repos().to_vec();
        if stale.is_empty() {
            return;
        }
        let code = self.clone();
        let spawned = std::thread::Builder::new()
            .name("reindex".to_string())
            .spawn(move || {
                for (name, root) in stale {
                    let Some(root) = root.to_str().and_then(|r| code.check_root(r).ok()) else {
                        tracing::warn!(repo = %name, root = %root.display(), "the code index was made again for this version; this repository's root is no longer allowed or gone, so index it again with /index");
                        continue;
                    };
                    let mut options = IndexOptions {
                        commit_every: CHECKPOINT_FILES,
                        cancel: vec![code.inner.closing.clone()],
                        ..IndexOptions::default()
                    };
                    options.walk.max_file_size = code.inner.config.max_file_bytes;
                    match code.inner.index.index_repo(&name, &root, &options, &|_| {}) {
                        Ok(report) => tracing::info!(repo = %name, files = report.files, "indexed again after the code index was made again for this version"),
                        Err(err) => tracing::warn!(repo = %name, error = %err, "indexing again after the code index was made again failed; use /index"),
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "cannot start indexing the stale repositories again; use /index");
        }
    }

    pub fn index_handle(&self) -> &CodeIndex {
        &self.inner.index
    }

    /// Checks that `path` is a directory under an allowed root and returns its canonical form.
    ///
    /// The root check comes first, on the canonical path when it exists and on the lexically normalized path
    /// when it does not, so that the error for a path outside the roots never tells whether it exists.
    pub fn check_root(&self, path: &str) -> Result<PathBuf> {
        let given = Path::new(path);
        let canonical = given.canonicalize();
        let resolved = match &canonical {
            Ok(canonical) => canonical.clone(),
            Err(_) => normalize(&std::env::current_dir().unwrap_or_default().join(given)),
        };
        if !self
            .inner
            .allowed
            .iter()
            .any(|root| resolved.starts_with(root))
        {
            let roots: Vec<String> = self
                .inner
                .allowed
                .iter()
                .map(|r| r.display().to_string())
                .collect();
            return Err(Error::PathNotAllowed {
                path: path.to_string(),
                resolved: resolved.display().to_string(),
                roots: if roots.is_empty() {
                    "none exist".to_string()
                } else {
                    roots.join(", ")
                },
            });
        }
        let canonical = canonical.map_err(|e| {
            Error::Invalid(format!(
                "cannot index `{path}`: {e}; give an existing directory"
            ))
        })?;
        if !canonical.is_dir() {
            return Err(Error::Invalid(format!(
                "cannot index `{path}`: it is a file; give the repository's directory"
            )));
        }
        Ok(canonical)
    }

    /// Indexes (incrementally) the repository at `path`, named `name` or after its directory.
    pub async fn index(&self, path: &str, name: Option<&str>) -> Result<IndexReport> {
        self.index_tracked(path, name, |_| {}).await
    }

    /// [`Code::index`], reporting progress to `progress` (from the scanner's threads), with a commit every
    /// [`CHECKPOINT_FILES`] new or changed files, so that a run after a crash skips what was committed.
    pub async fn index_tracked(
        &self,
        path: &str,
        name: Option<&str>,
        progress: impl Fn(IndexProgress) + Send + Sync + 'static,
    ) -> Result<IndexReport> {
        let root = self.check_root(path)?;
        let name = name.unwrap_or("").to_string();
        let code = self.clone();
        // A caller that goes away (a cancelled task) and the shutdown stop the run at its next file.
        let mine = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(mine.clone());
        let cancel = vec![mine, self.inner.closing.clone()];
        self.blocking(move || {
            let mut options = IndexOptions {
                commit_every: CHECKPOINT_FILES,
                cancel,
                ..IndexOptions::default()
            };
            options.walk.max_file_size = code.inner.config.max_file_bytes;
            Ok(code
                .inner
                .index
                .index_repo(&name, &root, &options, &progress)?)
        })
        .await
    }

    /// Runs a search within the `[scanner] query_*` bounds. Dropping the future (the caller went away) stops the
    /// search at its next check, as [`Code::close`] stops every search.
    pub async fn search(&self, request: SearchRequest) -> Result<Vec<SearchHit>> {
        let limit = self.limit(request.limit)?;
        let lang = request.lang.as_deref().map(parse_lang).transpose()?;
        let mine = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(mine.clone());
        let options = SearchOptions {
            limit,
            repo: request.repo,
            lang,
            path: request.path,
            budget: budget(&self.inner.config, vec![mine, self.inner.closing.clone()]),
        };
        let code = self.clone();
        self.blocking(move || Ok(code.inner.index.search(&request.query, &options)?))
            .await
    }

    /// Stops every search, running or to come, with `cancelled`: the process is shutting down.
    pub fn close(&self) {
        self.inner.closing.store(true, Ordering::Relaxed);
    }

    pub async fn symbol(
        &self,
        name: &str,
        kind: Option<&str>,
        repo: Option<String>,
        limit: Option<usize>,
    ) -> Result<Vec<SymbolHit>> {
        let options = SymbolOptions {
            kind: kind.map(parse_kind).transpose()?,
            repo,
            limit: self.limit(limit)?,
        };
        let (code, name) = (self.clone(), name.to_string());
        self.blocking(move || Ok(code.inner.index.symbol(&name, &options)?))
            .await
    }

    /// Definitions of a file, by path relative to its repository or by a path on disk inside an indexed one.
    pub async fn outline(
        &self,
        repo: Option<String>,
        path: &str,
    ) -> Result<(String, String, Vec<Definition>)> {
        let (code, path) = (self.clone(), path.to_string());
        self.blocking(move || {
            let (repo, rel) = code.inner.index.locate(repo.as_deref(), &path);
            let definitions = code.inner.index.outline(repo.as_deref(), &rel)?;
            Ok((repo.unwrap_or_default(), rel, definitions))
        })
        .await
    }

    pub async fn deps(&self, repo: Option<String>, path: &str, depth: u32) -> Result<Deps> {
        if depth == 0 || depth > 32 {
            return Err(Error::Invalid(
                "--depth must be between 1 and 32".to_string(),
            ));
        }
        let (code, path) = (self.clone(), path.to_string());
        self.blocking(move || {
            let (repo, rel) = code.inner.index.locate(repo.as_deref(), &path);
            Ok(code.inner.index.deps(repo.as_deref(), &rel, depth)?)
        })
        .await
    }

    /// Where a name is used, definitions first (`/refs`, the `refs` skill).
    pub async fn refs(
        &self,
        name: &str,
        kind: Option<&str>,
        repo: Option<String>,
        limit: Option<usize>,
    ) -> Result<Refs> {
        let options = RefsOptions {
            kind: kind
                .map(|k| k.parse::<RefKind>().map_err(Error::Invalid))
                .transpose()?,
            repo,
            limit: self.limit(limit)?,
        };
        let (code, name) = (self.clone(), name.to_string());
        self.blocking(move || Ok(code.inner.index.refs(&name, &options)?))
            .await
    }

    /// What may break if a file or a name changes (`/impact`, the `impact` skill). A file may be given as a path
    /// on disk inside an indexed repository, as `/outline` takes it.
    pub async fn impact(
        &self,
        target: &str,
        repo: Option<String>,
        depth: u32,
        limit: Option<usize>,
    ) -> Result<Impact> {
        if depth == 0 || depth > MAX_IMPACT_DEPTH {
            return Err(Error::Invalid(format!(
                "--depth must be between 1 and {MAX_IMPACT_DEPTH}"
            )));
        }
        let limit = self.limit(limit)?;
        let (code, target) = (self.clone(), target.to_string());
        self.blocking(move || {
            let (repo, target) = if target.contains('/') || target.contains('\\') {
                code.inner.index.locate(repo.as_deref(), &target)
            } else {
                (repo, target)
            };
            let options = ImpactOptions { repo, depth, limit };
            Ok(code.inner.index.impact(&target, &options)?)
        })
        .await
    }

    pub async fn repos(&self) -> Result<Vec<RepoInfo>> {
        let code = self.clone();
        self.blocking(move || Ok(code.inner.index.repos()?)).await
    }

    fn limit(&self, limit: Option<usize>) -> Result<usize> {
        let max = self.inner.config.max_limit;
        match limit {
            None => Ok(self.inner.config.default_limit),
            Some(n) if n >= 1 && n <= max => Ok(n),
            Some(_) => Err(Error::Invalid(format!(
                "--limit must be between 1 and {max}"
            ))),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Actor(format!("scanner task failed: {e}")))?
    }
}

/// A search's bounds from the configuration, stopped by any of `cancel`.
pub fn budget(config: &ScannerConfig, cancel: Vec<Arc<AtomicBool>>) -> Budget {
    Budget {
        timeout: Some(config.query_timeout),
        max_scan_bytes: Some(config.query_max_scan_bytes),
        max_regex_states: Some(config.query_max_regex_states),
        cancel,
    }
}

/// Resolves `.` and `..` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn parse_lang(text: &str) -> Result<Lang> {
    text.parse::<Lang>().map_err(Error::Scanner)
}

/// Kinds as the scanner serializes them: `function`, `method`, `struct`, `type_alias`, ...
fn parse_kind(text: &str) -> Result<SymbolKind> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        Error::Invalid(format!(
            "unknown kind `{text}`: use function, method, class, struct, enum, interface, type_alias, constant, variable, macro, module, field, enum_variant, union, namespace or impl"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_stops_running_searches_with_cancelled() {
        let repo = tempfile::tempdir().expect("repo");
        let body = "fn alpha() {}\n".repeat(200);
        for i in 0..200 {
            std::fs::write(repo.path().join(format!("f{i}.rs")), &body).expect("write");
        }
        let data = tempfile::tempdir().expect("data");
        let config = ScannerConfig {
            allowed_roots: vec![repo.path().to_path_buf()],
            max_file_bytes: 1 << 20,
            default_limit: 20,
            max_limit: 1000,
            query_timeout: std::time::Duration::from_secs(60),
            query_max_scan_bytes: u64::MAX,
            query_max_regex_states: 2000,
        };
        let code = Code::open(&data.path().join("index"), &config).expect("open");
        code.index(repo.path().to_str().expect("utf-8"), Some("r"))
            .await
            .expect("index");
        let request = SearchRequest {
            query: "/al.ha/".to_string(),
            limit: Some(1000),
            ..SearchRequest::default()
        };
        let running = {
            let (code, request) = (code.clone(), request.clone());
            tokio::spawn(async move {
                loop {
                    if let Err(err) = code.search(request.clone()).await {
                        return err;
                    }
                }
            })
        };
        code.search(request.clone()).await.expect("a search runs");
        code.close();
        let err = tokio::time::timeout(std::time::Duration::from_secs(30), running)
            .await
            .expect("the loop of searches stops")
            .expect("task");
        assert_eq!(err.kind(), "cancelled", "{err}");
        assert!(SkillError::from(err).is_interrupted());
        // And every later one.
        assert_eq!(
            code.search(request).await.expect_err("closed").kind(),
            "cancelled"
        );
    }

    #[tokio::test]
    async fn repositories_of_an_index_of_another_version_are_indexed_again_in_the_background() {
        use tantivy::schema::{Schema, STORED, STRING};
        let repo = tempfile::tempdir().expect("repo");
        std::fs::write(
            repo.path().join("a.rs"),
            "fn alpha() { beta(); }\nfn beta() {}\n",
        )
        .expect("write");
        let root = repo.path().canonicalize().expect("canonical");
        let data = tempfile::tempdir().expect("data");
        let dir = data.path().join("index");
        std::fs::create_dir_all(&dir).expect("mkdir");
        {
            let mut b = Schema::builder();
            let kind = b.add_text_field("kind", STRING);
            let name = b.add_text_field("repo", STRING | STORED);
            let json = b.add_text_field("repo_json", STORED);
            let old = tantivy::Index::create_in_dir(&dir, b.build()).expect("old index");
            let mut writer: tantivy::IndexWriter = old.writer(15_000_000).expect("writer");
            let mut doc = tantivy::TantivyDocument::new();
            doc.add_text(kind, "repo");
            doc.add_text(name, "r");
            doc.add_text(
                json,
                serde_json::json!({ "root": root, "last_indexed": 1 }).to_string(),
            );
            writer.add_document(doc).expect("add");
            writer.commit().expect("commit");
        }
        let config = ScannerConfig {
            allowed_roots: vec![root.clone()],
            max_file_bytes: 1 << 20,
            default_limit: 20,
            max_limit: 1000,
            query_timeout: std::time::Duration::from_secs(60),
            query_max_scan_bytes: u64::MAX,
            query_max_regex_states: 2000,
        };
        let code = Code::open(&dir, &config).expect("open");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let repos = code.repos().await.expect("repos");
            if repos.iter().any(|r| r.name == "r" && r.files == 1) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the stale repository was not indexed again: {repos:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let refs = code.refs("beta", None, None, None).await.expect("refs");
        assert_eq!(refs.total, 1);
    }

    use crate::skill::SkillError;
}
