//! A search that verifies few candidate files starts no thread; one that verifies many starts the verification pool.
//!
//! A one-shot tool (`dreamos search`) runs for a few milliseconds, and starting the pool's threads was a visible
//! share of them. This is its own test binary because the pool is one per process: another test's search would
//! start it first.

#![cfg(target_os = "linux")]

use std::path::Path;

use dreamos_scanner::{CodeIndex, Follow, IndexOptions, SearchOptions};

/// The threads of this process whose name says they verify candidates (Linux cuts names at 15 bytes).
fn verify_threads() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").expect("reading /proc/self/task");
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            std::fs::read_to_string(task.path().join("comm")).ok()
        })
        .filter(|name| name.starts_with("dreamos-verify"))
        .count()
}

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().expect("a parent")).expect("mkdir");
    std::fs::write(file, text).expect("write");
}

#[test]
fn few_candidates_start_no_thread_and_many_start_the_pool() {
    let repo = tempfile::tempdir().expect("temp dir");
    for i in 0..200 {
        write(
            repo.path(),
            &format!("src/f{i:03}.rs"),
            &format!("fn common_{i}() {{ shared_marker(); }}\n"),
        );
    }
    write(repo.path(), "src/rare.rs", "fn rare_marker() {}\n");
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().join("index");
    {
        let index = CodeIndex::open(&dir).expect("open");
        index
            .index_repo("p", repo.path(), &IndexOptions::default(), &|_| {})
            .expect("index");
    }
    let index = CodeIndex::open_following(&dir, data.path(), Follow::OwnCommits).expect("reopen");
    let search = |query: &str| {
        index
            .search(
                query,
                &SearchOptions {
                    limit: 1000,
                    ..SearchOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .len()
    };
    assert_eq!(verify_threads(), 0, "no search ran yet");

    // One candidate file (a literal and an identifier): verified on this thread.
    assert_eq!(search("\"rare_marker\""), 1);
    assert_eq!(search("rare_marker"), 1);
    assert_eq!(verify_threads(), 0, "a search of one file started threads");

    // 200 candidate files: past the first ones they are verified on the pool, one thread per core.
    assert_eq!(search("\"shared_marker();\""), 200);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let expected = if cores < 2 { 0 } else { cores };
    assert_eq!(verify_threads(), expected, "{cores} cores");
}
