//! Watch mode: keep a repository's index fresh as files are saved.
//!
//! A `notify` watcher reports changed paths; one thread collects them until the burst has been quiet for
//! [`DEBOUNCE`] (an editor's save is often several events: write a temp file, rename, chmod), then hands the set to
//! [`CodeIndex::update_files`], which re-reads those files with the walker's rules, commits once and reloads the
//! reader. A saved file is therefore searchable about `DEBOUNCE` plus one small commit after the save.
//!
//! The library never prints: what happened (an update, or an error) goes to the caller's callback. Dropping the
//! [`WatchHandle`] (or calling [`WatchHandle::stop`]) stops the watcher and joins its thread.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::index::{CodeIndex, WatchUpdate};

/// How long a burst of events must be quiet before the changed files are indexed.
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// The longest a steady stream of events can delay indexing: after this, the files seen so far are indexed.
pub const MAX_DELAY: Duration = Duration::from_millis(500);

/// What the watcher tells its caller.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum WatchEvent {
    /// Some files were re-indexed (or removed) and the change is searchable.
    Updated(WatchUpdate),
    /// Something failed; watching goes on. The text is fit to show a user.
    Error { message: String },
}

enum Msg {
    Paths(Vec<PathBuf>),
    Failed(String),
    Stop,
}

/// A running watch; dropping it stops the watch.
pub struct WatchHandle {
    sender: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    // Kept alive for as long as the watch runs; dropping it unregisters the OS watches.
    watcher: Option<notify::RecommendedWatcher>,
    root: PathBuf,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle")
            .field("root", &self.root)
            .finish()
    }
}

impl WatchHandle {
    /// The root directory being watched.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stops watching and waits for the last update in progress to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.watcher.take();
        // The thread may already be gone (it never exits on its own, but a send to a finished thread is harmless).
        let _ = self.sender.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts watching repository `name`, which must already be indexed (its root comes from the index).
pub(crate) fn watch(
    index: CodeIndex,
    name: &str,
    on_event: Box<dyn Fn(WatchEvent) + Send>,
) -> Result<WatchHandle> {
    crate::index::check_repo_name(name)?;
    let root = index
        .repos()?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| Error::UnknownRepo(name.to_string()))?
        .root;
    let (sender, receiver) = mpsc::channel::<Msg>();
    let events = sender.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let msg = match res {
            // Reads and opens change nothing.
            Ok(event) if matches!(event.kind, EventKind::Access(_)) => return,
            Ok(event) => Msg::Paths(event.paths),
            Err(e) => Msg::Failed(format!("file watcher error: {e}")),
        };
        // The receiver is gone only while the handle is shutting down.
        let _ = events.send(msg);
    })
    .map_err(|cause| Error::Watch {
        root: root.clone(),
        cause,
    })?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|cause| Error::Watch {
            root: root.clone(),
            cause,
        })?;
    let repo = name.to_string();
    let thread_root = root.clone();
    let thread = std::thread::Builder::new()
        .name(format!("dreamos-watch-{repo}"))
        .spawn(move || run(&index, &repo, &thread_root, &receiver, &*on_event))
        .map_err(|cause| Error::Io {
            path: root.clone(),
            cause,
        })?;
    Ok(WatchHandle {
        sender,
        thread: Some(thread),
        watcher: Some(watcher),
        root,
    })
}

/// The watch thread: collect a burst of paths, index them, repeat until told to stop.
fn run(
    index: &CodeIndex,
    repo: &str,
    root: &Path,
    receiver: &mpsc::Receiver<Msg>,
    on_event: &dyn Fn(WatchEvent),
) {
    let mut pending: BTreeSet<PathBuf> = BTreeSet::new();
    let mut first: Option<Instant> = None;
    let own_dir = index.owned_dir().canonicalize().ok();
    loop {
        let msg = if pending.is_empty() {
            match receiver.recv() {
                Ok(msg) => Some(msg),
                Err(_) => return,
            }
        } else {
            let started = first.unwrap_or_else(Instant::now);
            let wait = DEBOUNCE.min(MAX_DELAY.saturating_sub(started.elapsed()));
            match receiver.recv_timeout(wait) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        match msg {
            Some(Msg::Stop) => return,
            Some(Msg::Failed(message)) => on_event(WatchEvent::Error { message }),
            Some(Msg::Paths(paths)) => {
                for path in paths {
                    // The index's own files change on every commit; following them would loop forever.
                    if is_inside_git_dir(&path, root)
                        || own_dir.as_ref().is_some_and(|d| path.starts_with(d))
                    {
                        continue;
                    }
                    pending.insert(path);
                }
                if first.is_none() && !pending.is_empty() {
                    first = Some(Instant::now());
                }
                let overdue = first.is_some_and(|t| t.elapsed() >= MAX_DELAY);
                if !overdue {
                    continue;
                }
                flush(index, repo, &mut pending, on_event);
                first = None;
            }
            None => {
                flush(index, repo, &mut pending, on_event);
                first = None;
            }
        }
    }
}

fn flush(
    index: &CodeIndex,
    repo: &str,
    pending: &mut BTreeSet<PathBuf>,
    on_event: &dyn Fn(WatchEvent),
) {
    let paths: Vec<PathBuf> = std::mem::take(pending).into_iter().collect();
    if paths.is_empty() {
        return;
    }
    match index.update_files(repo, &paths) {
        Ok(update) => {
            if !(update.added.is_empty() && update.changed.is_empty() && update.deleted.is_empty())
            {
                on_event(WatchEvent::Updated(update));
            }
        }
        Err(e) => on_event(WatchEvent::Error {
            message: e.to_string(),
        }),
    }
}

/// Events inside `.git` (every commit, checkout or fetch) are not source changes.
fn is_inside_git_dir(path: &Path, root: &Path) -> bool {
    path.strip_prefix(root)
        .map(|rel| rel.components().any(|c| c.as_os_str() == ".git"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{IndexOptions, SearchOptions};

    /// Polls `f` until it returns true or `deadline` passes; never sleeps longer than a millisecond at a time.
    fn poll_until(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if f() {
                return true;
            }
            std::thread::yield_now();
        }
        f()
    }

    #[test]
    fn saved_file_is_searchable_within_a_second() {
        let repo = tempfile::tempdir().expect("temp dir");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(repo.path().join("a.rs"), "fn alpha() {}\n").expect("write");
        let index = CodeIndex::open(dir.path()).expect("open");
        index
            .index_repo("w", repo.path(), &IndexOptions::default(), &|_| {})
            .expect("index");
        let (tx, rx) = mpsc::channel();
        let handle = index
            .watch("w", move |e| {
                let _ = tx.send(e);
            })
            .expect("watch");
        let search = |q: &str| {
            index
                .search(q, &SearchOptions::default())
                .expect("search")
                .len()
        };
        assert_eq!(search("zebra_unique_name"), 0);
        let saved = Instant::now();
        std::fs::write(repo.path().join("b.rs"), "fn zebra_unique_name() {}\n").expect("write");
        assert!(
            poll_until(Duration::from_secs(1), || search("zebra_unique_name") == 1),
            "new file not searchable 1 s after save; events: {:?}",
            rx.try_iter().collect::<Vec<_>>()
        );
        let latency = saved.elapsed();
        // Changing a file replaces its old content; deleting it removes it.
        std::fs::write(repo.path().join("a.rs"), "fn omega_changed() {}\n").expect("write");
        assert!(poll_until(Duration::from_secs(1), || search(
            "omega_changed"
        ) == 1
            && search("alpha") == 0));
        std::fs::remove_file(repo.path().join("b.rs")).expect("remove");
        assert!(poll_until(Duration::from_secs(1), || search(
            "zebra_unique_name"
        ) == 0));
        handle.stop();
        assert!(latency < Duration::from_secs(1));
    }
}
