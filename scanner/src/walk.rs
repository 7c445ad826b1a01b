//! The walker: which files of a repository get scanned, read on every core, and why the others are skipped.
//!
//! [`walk`] visits every text file under a root, in parallel, honouring `.gitignore`, `.ignore` and
//! `.git/info/exclude` (even outside a git checkout, so an unpacked tarball behaves like its repository) and
//! skipping hidden files unless asked. The user's global gitignore is *not* read: an index must not depend on
//! whose machine built it. Files of languages we do not parse are still yielded, with `lang: None`, because
//! they are searchable as text.
//!
//! Every file left out is counted under a [`SkipReason`]. The rules, in the order they are checked:
//! - `too_large`: bigger than [`WalkOptions::max_file_size`] (checked from metadata, before reading);
//! - `unreadable`: the file or a directory cannot be opened (permission denied, or another I/O error);
//! - `binary`: a NUL byte in the first 8 KiB (git's own test);
//! - `invalid_utf8`: the content, or the file name, is not UTF-8;
//! - `minified`: a web asset (`.js`, `.mjs`, `.cjs`, `.css`, `.map`, or any `*.min.*`) with a line longer than
//!   5,000 bytes, or, past 2 KiB, lines averaging more than 300 bytes. Such files are build output: one line
//!   holds a whole program, which makes useless search results and slow parses. Source code in other
//!   languages is never judged minified, since a long line there is still somebody's code;
//! - `symlink_outside_root`, `symlink_loop`, `broken_symlink`: symbolic links are followed only when they
//!   resolve inside the root; a link that points back to one of its own ancestors, or to itself, is a loop.
//!
//! [`read_source`] applies the same rules to one file, for incremental updates.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ignore::gitignore::GitignoreBuilder;
use ignore::{WalkBuilder, WalkState};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Lang;

/// How much of a file is looked at for a NUL byte, as git does to tell binary from text.
const BINARY_PROBE_BYTES: usize = 8 * 1024;
/// A line longer than this in a web asset marks the file as minified.
const MINIFIED_MAX_LINE: usize = 5_000;
/// An average line longer than this in a web asset (past [`MINIFIED_MIN_SIZE`]) marks it as minified.
const MINIFIED_MAX_AVERAGE_LINE: usize = 300;
/// Below this size the average-line rule does not apply: a short one-line file is not a bundle.
const MINIFIED_MIN_SIZE: usize = 2 * 1024;

/// What the walker reads and skips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkOptions {
    /// Files bigger than this many bytes are skipped as `too_large`. Default 1 MiB.
    pub max_file_size: u64,
    /// Also walk hidden files and directories (names starting with `.`). `.git` itself is never walked.
    pub include_hidden: bool,
    /// Honour `.gitignore`, `.ignore` and `.git/info/exclude`. Default true.
    pub respect_ignore_files: bool,
    /// Worker threads; 0 picks one per core.
    pub threads: usize,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            max_file_size: 1024 * 1024,
            include_hidden: false,
            respect_ignore_files: true,
            threads: 0,
        }
    }
}

/// One text file the walker read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The path relative to the root, with `/` separators on every platform.
    pub rel_path: String,
    /// The language we parse it as, or `None` for other text (README.md, Cargo.toml, ...).
    pub lang: Option<Lang>,
    /// The whole content, valid UTF-8.
    pub text: String,
    /// The size in bytes.
    pub bytes: u64,
}

/// Why a file was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A NUL byte in the first 8 KiB.
    Binary,
    /// The content or the file name is not valid UTF-8.
    InvalidUtf8,
    /// Bigger than the configured maximum.
    TooLarge,
    /// A web asset with very long lines: build output, not source.
    Minified,
    /// Permission denied, or another I/O error while reading.
    Unreadable,
    /// A symbolic link that resolves outside the root.
    SymlinkOutsideRoot,
    /// A symbolic link that leads back into its own ancestors, or to itself.
    SymlinkLoop,
    /// A symbolic link whose target does not exist.
    BrokenSymlink,
    // New reasons go last: reports and manifests store them by name, but keep the order stable anyway.
    /// Inside a pseudo-filesystem (`/proc`, `/sys`, `/dev`, ...): kernel state, not files; counted once per
    /// directory left out.
    PseudoFilesystem,
}

impl SkipReason {
    /// The reason's name, as in reports: `binary`, `too_large`, ...
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::Binary => "binary",
            SkipReason::InvalidUtf8 => "invalid_utf8",
            SkipReason::TooLarge => "too_large",
            SkipReason::Minified => "minified",
            SkipReason::Unreadable => "unreadable",
            SkipReason::SymlinkOutsideRoot => "symlink_outside_root",
            SkipReason::SymlinkLoop => "symlink_loop",
            SkipReason::BrokenSymlink => "broken_symlink",
            SkipReason::PseudoFilesystem => "pseudo_filesystem",
        }
    }

    const ALL: [SkipReason; 9] = [
        SkipReason::Binary,
        SkipReason::InvalidUtf8,
        SkipReason::TooLarge,
        SkipReason::Minified,
        SkipReason::Unreadable,
        SkipReason::SymlinkOutsideRoot,
        SkipReason::SymlinkLoop,
        SkipReason::BrokenSymlink,
        SkipReason::PseudoFilesystem,
    ];
}

/// Filesystem types that hold kernel state rather than files: reading them can block forever (`/proc/kmsg`) or
/// never end (`/proc/self/task/*/...`), and a size of 0 says nothing about what a read returns.
const PSEUDO_FILESYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "debugfs",
    "tracefs",
    "securityfs",
    "cgroup",
    "cgroup2",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "efivarfs",
    "rpc_pipefs",
    "nsfs",
];

/// Every mount point with whether it is a pseudo-filesystem, from `/proc/self/mounts`; where that cannot be read,
/// `/proc` and `/sys` are assumed to be.
fn pseudo_mounts() -> Vec<(PathBuf, bool)> {
    let mut mounts = Vec::new();
    match std::fs::read_to_string("/proc/self/mounts") {
        Ok(table) => {
            for line in table.lines() {
                let mut fields = line.split_whitespace();
                let (Some(_), Some(point), Some(kind)) =
                    (fields.next(), fields.next(), fields.next())
                else {
                    continue;
                };
                // Spaces in mount points are written as \040.
                let point = PathBuf::from(point.replace("\\040", " "));
                mounts.push((point, PSEUDO_FILESYSTEMS.contains(&kind)));
            }
        }
        Err(_) => {
            mounts.push((PathBuf::from("/proc"), true));
            mounts.push((PathBuf::from("/sys"), true));
        }
    }
    mounts
}

/// Whether `path` lies on a pseudo-filesystem: the deepest mount point above it decides (`/dev/shm` is tmpfs,
/// holding real files, under the devtmpfs of `/dev`).
fn in_pseudo(path: &Path, mounts: &[(PathBuf, bool)]) -> bool {
    mounts
        .iter()
        .filter(|(point, _)| path.starts_with(point))
        .max_by_key(|(point, _)| point.components().count())
        .is_some_and(|(_, pseudo)| *pseudo)
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a walk saw: the files yielded, their total size, and the files skipped, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkReport {
    pub files: u64,
    pub bytes: u64,
    pub skipped: BTreeMap<SkipReason, u64>,
}

impl WalkReport {
    /// How many files were skipped for this reason.
    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.skipped.get(&reason).copied().unwrap_or(0)
    }
}

/// Counters shared by the walker's threads; a map behind a lock would serialize them on every file.
#[derive(Default)]
struct Counters {
    files: AtomicU64,
    bytes: AtomicU64,
    skipped: [AtomicU64; SkipReason::ALL.len()],
}

impl Counters {
    fn skip(&self, reason: SkipReason) {
        self.skipped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn report(&self) -> WalkReport {
        let mut skipped = BTreeMap::new();
        for reason in SkipReason::ALL {
            let n = self.skipped[reason as usize].load(Ordering::Relaxed);
            if n > 0 {
                skipped.insert(reason, n);
            }
        }
        WalkReport {
            files: self.files.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            skipped,
        }
    }
}

/// Checks that `root` can be walked (an existing directory, not on a pseudo-filesystem) without walking it, so that
/// a caller can refuse a bad root before it starts long work.
pub fn check_root(root: &Path) -> Result<PathBuf> {
    checked_root(root).map(|(root, _)| root)
}

fn checked_root(root: &Path) -> Result<(PathBuf, Vec<(PathBuf, bool)>)> {
    let root = canonical_root(root)?;
    let pseudo = pseudo_mounts();
    if in_pseudo(&root, &pseudo) {
        return Err(Error::WalkRoot {
            path: root,
            why: "it is a pseudo-filesystem (kernel state such as /proc, /sys or /dev), not source code".to_string(),
        });
    }
    Ok((root, pseudo))
}

/// Walks `root` on every core and calls `visit` once per text file, from several threads at once, in no
/// particular order. A root that does not exist or is not a directory is an error; an empty directory is an
/// empty report.
pub fn walk(
    root: &Path,
    opts: &WalkOptions,
    visit: impl Fn(SourceFile) + Sync,
) -> Result<WalkReport> {
    let (root, pseudo) = checked_root(root)?;
    let counters = Arc::new(Counters::default());
    let builder = builder(&root, pseudo, opts, &counters);
    builder.build_parallel().run(|| {
        let counters = &counters;
        let root = &root;
        let visit = &visit;
        Box::new(move |entry| {
            let Some((entry, rel_path, size)) = candidate(entry, root, counters) else {
                return WalkState::Continue;
            };
            match load(entry.path(), rel_path, size, opts) {
                Ok(file) => {
                    counters.files.fetch_add(1, Ordering::Relaxed);
                    counters.bytes.fetch_add(file.bytes, Ordering::Relaxed);
                    visit(file);
                }
                Err(reason) => counters.skip(reason),
            }
            WalkState::Continue
        })
    });
    Ok(counters.report())
}

/// The files [`walk`] would try to read under `root` (regular files the ignore rules let through, of at most
/// `max_file_size` bytes), counted from directory entries and metadata alone: a total for progress reports. A
/// file later found binary or minified is counted here and skipped by `walk`.
pub fn count(root: &Path, opts: &WalkOptions) -> Result<u64> {
    let (root, pseudo) = checked_root(root)?;
    let counters = Arc::new(Counters::default());
    let builder = builder(&root, pseudo, opts, &counters);
    let total = AtomicU64::new(0);
    builder.build_parallel().run(|| {
        let counters = &counters;
        let root = &root;
        let total = &total;
        Box::new(move |entry| {
            if let Some((_, _, size)) = candidate(entry, root, counters) {
                if size <= opts.max_file_size {
                    total.fetch_add(1, Ordering::Relaxed);
                }
            }
            WalkState::Continue
        })
    });
    Ok(total.into_inner())
}

/// A regular file of the walk, with its path relative to the root and its size; `None` (counted as skipped) for
/// anything else.
fn candidate(
    entry: std::result::Result<ignore::DirEntry, ignore::Error>,
    root: &Path,
    counters: &Counters,
) -> Option<(ignore::DirEntry, String, u64)> {
    let entry = match entry {
        Ok(entry) => entry,
        Err(err) => {
            counters.skip(classify_walk_error(&err));
            return None;
        }
    };
    if !entry.file_type().is_some_and(|t| t.is_file()) {
        return None;
    }
    let Some(rel_path) = relative_path(entry.path(), root) else {
        counters.skip(SkipReason::InvalidUtf8);
        return None;
    };
    match entry.metadata() {
        Ok(meta) => {
            let size = meta.len();
            Some((entry, rel_path, size))
        }
        Err(err) => {
            counters.skip(classify_walk_error(&err));
            None
        }
    }
}

/// The walker over `root` with the rules of `opts`: ignore files, hidden files, `.git`, pseudo-filesystems and
/// symlinks that leave the root or loop.
fn builder(
    root: &Path,
    pseudo: Vec<(PathBuf, bool)>,
    opts: &WalkOptions,
    counters: &Arc<Counters>,
) -> WalkBuilder {
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(!opts.include_hidden)
        .git_ignore(opts.respect_ignore_files)
        .git_exclude(opts.respect_ignore_files)
        .ignore(opts.respect_ignore_files)
        .git_global(false)
        .parents(false)
        .require_git(false)
        .follow_links(true)
        .threads(opts.threads);
    let filter_root = root.to_path_buf();
    let filter_counters = Arc::clone(counters);
    builder.filter_entry(move |entry| {
        if entry.depth() > 0 && entry.file_name() == ".git" {
            return false;
        }
        // A root such as `/` contains /proc and /sys: never go in.
        if entry.depth() > 0 && in_pseudo(entry.path(), &pseudo) {
            filter_counters.skip(SkipReason::PseudoFilesystem);
            return false;
        }
        if !entry.path_is_symlink() {
            return true;
        }
        match symlink_verdict(entry.path(), &filter_root) {
            Ok(()) => true,
            Err(reason) => {
                filter_counters.skip(reason);
                false
            }
        }
    });

    builder
}

/// The outcome of reading one file with [`read_source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The file is a text file the walker would yield.
    Source(SourceFile),
    /// The file exists but the walker would skip it, for this reason.
    Skipped(SkipReason),
    /// The walker would not look at this path at all: ignored by an ignore file, hidden, inside `.git`,
    /// or not a regular file.
    Ignored,
    /// Nothing exists at this path (it was deleted or renamed away).
    Missing,
}

/// Reads one file, `rel_path` (`/`-separated, relative to `root`), by the same rules as [`walk`]: for
/// incremental updates when a watcher reports a change.
pub fn read_source(root: &Path, rel_path: &str, opts: &WalkOptions) -> Result<ReadOutcome> {
    let root = canonical_root(root)?;
    let components = check_rel_path(rel_path)?;
    if components.contains(&".git") {
        return Ok(ReadOutcome::Ignored);
    }
    if !opts.include_hidden && components.iter().any(|c| c.starts_with('.')) {
        return Ok(ReadOutcome::Ignored);
    }
    let path = components.iter().fold(root.clone(), |p, c| p.join(c));
    let link_meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(ReadOutcome::Missing),
        Err(err) if err.kind() == ErrorKind::PermissionDenied => {
            return Ok(ReadOutcome::Skipped(SkipReason::Unreadable))
        }
        // A component of the path is a file, or similar: nothing the walker would reach.
        Err(_) => return Ok(ReadOutcome::Missing),
    };
    // Any component may be a link, not just the last one: resolve the whole path and insist it stays inside.
    if let Err(reason) = symlink_verdict(&path, &root) {
        return Ok(ReadOutcome::Skipped(reason));
    }
    let meta = if link_meta.file_type().is_symlink() {
        match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(err) => return Ok(ReadOutcome::Skipped(classify_io(&err))),
        }
    } else {
        link_meta
    };
    if !meta.is_file() {
        return Ok(ReadOutcome::Ignored);
    }
    if opts.respect_ignore_files && is_ignored(&root, &components) {
        return Ok(ReadOutcome::Ignored);
    }
    Ok(match load(&path, rel_path.to_string(), meta.len(), opts) {
        Ok(file) => ReadOutcome::Source(file),
        Err(reason) => ReadOutcome::Skipped(reason),
    })
}

/// Canonicalizes the root, with errors that say what to do.
fn canonical_root(root: &Path) -> Result<PathBuf> {
    let canonical = std::fs::canonicalize(root).map_err(|err| Error::WalkRoot {
        path: root.to_path_buf(),
        why: if err.kind() == ErrorKind::NotFound {
            "it does not exist; give the path of a repository's top directory".to_string()
        } else {
            format!("{err}")
        },
    })?;
    if !canonical.is_dir() {
        return Err(Error::WalkRoot {
            path: root.to_path_buf(),
            why: "it is not a directory; give the path of a repository's top directory".to_string(),
        });
    }
    Ok(canonical)
}

/// Splits a repository-relative path into its components, refusing anything that could leave the root.
fn check_rel_path(rel_path: &str) -> Result<Vec<&str>> {
    let bad = |why: &str| Error::BadPath {
        path: rel_path.to_string(),
        why: why.to_string(),
    };
    if rel_path.is_empty() {
        return Err(bad(
            "it is empty; give a file path relative to the repository root",
        ));
    }
    if Path::new(rel_path).is_absolute() || rel_path.starts_with('/') {
        return Err(bad(
            "it is absolute; give it relative to the repository root",
        ));
    }
    let mut parts = Vec::new();
    for part in rel_path.split('/') {
        match Path::new(part).components().next() {
            _ if part.is_empty() || part == "." => continue,
            Some(Component::ParentDir) => {
                return Err(bad("it contains `..`; give a path inside the repository"))
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(bad("it names the repository root, not a file"));
    }
    Ok(parts)
}

/// Whether a symbolic link (or a path through links) may be followed: it must resolve inside the root.
fn symlink_verdict(path: &Path, root: &Path) -> std::result::Result<(), SkipReason> {
    match std::fs::canonicalize(path) {
        Ok(target) if target.starts_with(root) => Ok(()),
        Ok(_) => Err(SkipReason::SymlinkOutsideRoot),
        Err(err) => Err(classify_io(&err)),
    }
}

/// ELOOP, which the standard library reports without a stable `ErrorKind`.
#[cfg(any(target_os = "linux", target_os = "android"))]
const ELOOP: Option<i32> = Some(40);
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd"
))]
const ELOOP: Option<i32> = Some(62);
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd"
)))]
const ELOOP: Option<i32> = None;

fn classify_io(err: &std::io::Error) -> SkipReason {
    if ELOOP.is_some() && err.raw_os_error() == ELOOP {
        SkipReason::SymlinkLoop
    } else if err.kind() == ErrorKind::NotFound {
        SkipReason::BrokenSymlink
    } else {
        SkipReason::Unreadable
    }
}

fn classify_walk_error(err: &ignore::Error) -> SkipReason {
    match err {
        ignore::Error::Loop { .. } => SkipReason::SymlinkLoop,
        ignore::Error::Io(io) => classify_io(io),
        ignore::Error::WithPath { err, .. }
        | ignore::Error::WithDepth { err, .. }
        | ignore::Error::WithLineNumber { err, .. } => classify_walk_error(err),
        ignore::Error::Partial(errs) => errs
            .first()
            .map_or(SkipReason::Unreadable, classify_walk_error),
        _ => SkipReason::Unreadable,
    }
}

/// The path relative to the root with `/` separators, or `None` if a component is not UTF-8.
fn relative_path(path: &Path, root: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut out = String::with_capacity(rel.as_os_str().len());
    for component in rel.components() {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(component.as_os_str().to_str()?);
    }
    (!out.is_empty()).then_some(out)
}

/// Reads a file and applies the content rules: size, readability, binary, UTF-8, minified.
fn load(
    path: &Path,
    rel_path: String,
    size: u64,
    opts: &WalkOptions,
) -> std::result::Result<SourceFile, SkipReason> {
    if size > opts.max_file_size {
        return Err(SkipReason::TooLarge);
    }
    // Never more than the limit, whatever size the file reported: it may have grown since, or report a size
    // that has nothing to do with what a read returns.
    let mut bytes = Vec::with_capacity(size as usize);
    std::fs::File::open(path)
        .and_then(|file| {
            std::io::Read::read_to_end(
                &mut std::io::Read::take(file, opts.max_file_size + 1),
                &mut bytes,
            )
        })
        .map_err(|err| classify_io(&err))?;
    if bytes.len() as u64 > opts.max_file_size {
        return Err(SkipReason::TooLarge);
    }
    let probe = &bytes[..bytes.len().min(BINARY_PROBE_BYTES)];
    if memchr::memchr(0, probe).is_some() {
        return Err(SkipReason::Binary);
    }
    let text = String::from_utf8(bytes).map_err(|_| SkipReason::InvalidUtf8)?;
    if is_web_asset(&rel_path) && looks_minified(text.as_bytes()) {
        return Err(SkipReason::Minified);
    }
    Ok(SourceFile {
        lang: Lang::from_path(Path::new(&rel_path)),
        bytes: text.len() as u64,
        text,
        rel_path,
    })
}

/// Files where minified build output is common: JavaScript, CSS, source maps, and anything named `*.min.*`.
fn is_web_asset(rel_path: &str) -> bool {
    let name = rel_path.rsplit('/').next().unwrap_or(rel_path);
    if name.contains(".min.") {
        return true;
    }
    let ext = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    ["js", "mjs", "cjs", "css", "map"]
        .iter()
        .any(|e| e.eq_ignore_ascii_case(ext))
}

fn looks_minified(text: &[u8]) -> bool {
    let mut lines = 0usize;
    let mut start = 0usize;
    for end in memchr::memchr_iter(b'\n', text).chain(std::iter::once(text.len())) {
        if end - start > MINIFIED_MAX_LINE {
            return true;
        }
        lines += 1;
        start = end + 1;
    }
    text.len() > MINIFIED_MIN_SIZE && text.len() / lines.max(1) > MINIFIED_MAX_AVERAGE_LINE
}

/// Whether the ignore files between the root and the file exclude it (or one of its directories). The
/// deepest file with a matching rule decides, as in git.
fn is_ignored(root: &Path, components: &[&str]) -> bool {
    let mut dirs: Vec<PathBuf> = Vec::with_capacity(components.len());
    let mut dir = root.to_path_buf();
    dirs.push(dir.clone());
    for part in &components[..components.len() - 1] {
        dir.push(part);
        dirs.push(dir.clone());
    }
    let full = components.iter().fold(root.to_path_buf(), |p, c| p.join(c));
    // Check each prefix of the path (its directories, then the file), so that an ignored directory
    // hides everything inside it, as it does for the walker, which never descends into it.
    for depth in 1..=components.len() {
        let target = components[..depth]
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c));
        let is_dir = depth < components.len() || full.is_dir();
        let mut verdict = None;
        // Ignore files in directories above `target`, deepest first; `.ignore` overrides `.gitignore`.
        for dir in dirs[..depth].iter().rev() {
            let mut candidates = vec![dir.join(".ignore"), dir.join(".gitignore")];
            if dir == root {
                candidates.push(root.join(".git/info/exclude"));
            }
            for file in candidates {
                if !file.is_file() {
                    continue;
                }
                let mut builder = GitignoreBuilder::new(dir);
                if builder.add(&file).is_some() {
                    continue;
                }
                let Ok(matcher) = builder.build() else {
                    continue;
                };
                let m = matcher.matched(&target, is_dir);
                if m.is_ignore() {
                    verdict = Some(true);
                } else if m.is_whitelist() {
                    verdict = Some(false);
                }
                if verdict.is_some() {
                    break;
                }
            }
            if verdict.is_some() {
                break;
            }
        }
        if verdict == Some(true) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests;
