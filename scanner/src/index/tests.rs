//! Indexing, symbols, dependencies and locking against a real Tantivy index in a temporary directory.

use std::path::Path;

use super::search::tests::{hits_of, search_all, write_made_repo, write_repo};
use super::{
    CodeIndex, IndexOptions, IndexProgress, IndexReport, MatchKind, SearchOptions, SymbolOptions,
};
use crate::error::Error;
use crate::model::SymbolKind;

fn index_dir() -> (tempfile::TempDir, CodeIndex) {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = CodeIndex::open(dir.path()).expect("open index");
    (dir, index)
}

fn run(index: &CodeIndex, name: &str, root: &Path) -> IndexReport {
    index
        .index_repo(name, root, &IndexOptions::default(), &|_| {})
        .expect("index_repo")
}

/// Compares (added, changed, deleted, unchanged, files).
fn check_counts(report: &IndexReport, expected: (u64, u64, u64, u64, u64)) {
    assert_eq!(
        (
            report.added,
            report.changed,
            report.deleted,
            report.unchanged,
            report.files
        ),
        expected,
        "report {report:?}"
    );
}

fn count(index: &CodeIndex, query: &str) -> usize {
    search_all(index, query).len()
}

#[test]
fn code_index_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<CodeIndex>();
}

#[test]
fn huge_limits_do_not_panic() {
    let repo = write_repo(&[("a.rs", "fn alpha() {}\nfn alphabet() {}\n")]);
    let (_dir, index) = index_dir();
    run(&index, "big", repo.path());
    let all = SearchOptions {
        limit: usize::MAX,
        ..SearchOptions::default()
    };
    let alpha = index.search("alpha", &all).expect("search");
    // The identifier once, then `alphabet` as a substring.
    assert_eq!(alpha.len(), 2);
    assert_eq!(alpha[0].matched, super::LineMatch::Identifier);
    assert_eq!(alpha[1].matched, super::LineMatch::Substring);
    assert_eq!(index.search("\"alpha\"", &all).expect("search").len(), 2);
    let sym = SymbolOptions {
        limit: usize::MAX,
        ..SymbolOptions::default()
    };
    assert_eq!(index.symbol("alpha", &sym).expect("symbol").len(), 2);
}

#[test]
fn progress_has_a_total_and_only_grows() {
    // 700 files: several reports while reading, from several threads; one binary file is counted in the total
    // and skipped.
    let mut files: Vec<(String, String)> = (0..700)
        .map(|i| (format!("src/f{i}.rs"), format!("fn f{i}() {{}}\n")))
        .collect();
    files.push(("blob.rs".to_string(), "\0\0binary".to_string()));
    let repo = write_made_repo(&files);
    let (_dir, index) = index_dir();
    let seen = std::sync::Mutex::new(Vec::new());
    index
        .index_repo("p", repo.path(), &IndexOptions::default(), &|p| {
            seen.lock().expect("not poisoned").push(p)
        })
        .expect("index");
    let seen = seen.into_inner().expect("not poisoned");
    let counts: Vec<(u64, u64, u64)> = seen
        .iter()
        .filter_map(|p| match p {
            IndexProgress::Files {
                read,
                indexed,
                total,
            } => Some((*read, *indexed, *total)),
            _ => None,
        })
        .collect();
    assert!(counts.len() >= 3, "{seen:?}");
    assert!(
        counts
            .windows(2)
            .all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1 && w[1].2 >= w[0].2),
        "counts go back: {counts:?}"
    );
    assert!(counts.iter().all(|c| c.2 == 701), "{counts:?}");
    assert_eq!(counts.last(), Some(&(700, 700, 701)), "{counts:?}");
    assert_eq!(seen.last(), Some(&IndexProgress::Committing), "{seen:?}");
}

#[test]
fn incremental_runs_touch_only_what_changed() {
    let repo = write_repo(&[
        ("a.rs", "fn alpha() {}\n"),
        ("b.rs", "fn beta() {}\n"),
        ("c.py", "def gamma():\n    pass\n"),
    ]);
    let (dir, index) = index_dir();
    let first = run(&index, "inc", repo.path());
    check_counts(&first, (3, 0, 0, 0, 3));
    assert_eq!(first.symbols, 3);
    assert_eq!(first.lines, 4);

    check_counts(&run(&index, "inc", repo.path()), (0, 0, 0, 3, 3));

    std::fs::write(repo.path().join("b.rs"), "fn beta_two() {}\n").expect("write");
    std::fs::write(repo.path().join("d.rs"), "fn delta() {}\n").expect("write");
    std::fs::remove_file(repo.path().join("c.py")).expect("remove");
    check_counts(&run(&index, "inc", repo.path()), (1, 1, 1, 1, 3));
    assert_eq!(count(&index, "beta"), 1);
    assert_eq!(count(&index, "beta_two"), 1);
    assert_eq!(count(&index, "gamma"), 0);
    assert_eq!(count(&index, "delta"), 1);
    // Old symbols of the changed file are gone too.
    let hits = index
        .symbol("beta", &SymbolOptions::default())
        .expect("symbol");
    assert_eq!(
        hits.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["beta_two"]
    );

    // Reopening the index (a new process) sees the same manifest.
    drop(index);
    let index = CodeIndex::open(dir.path()).expect("reopen");
    check_counts(&run(&index, "inc", repo.path()), (0, 0, 0, 3, 3));
}

/// The index's commit counter: it moves with every commit, and only then.
fn opstamp(index: &CodeIndex) -> u64 {
    index.inner.index.load_metas().expect("metas").opstamp
}

#[test]
fn a_run_that_finds_nothing_changed_commits_nothing() {
    let repo = write_repo(&[("a.rs", "fn steady() {}\n"), ("b.py", "import a\n")]);
    let (_dir, index) = index_dir();
    run(&index, "steady", repo.path());
    let (before, listed) = (opstamp(&index), index.repos().expect("repos"));
    let segments = index.inner.index.searchable_segment_ids().expect("ids");
    check_counts(&run(&index, "steady", repo.path()), (0, 0, 0, 2, 2));
    assert_eq!(opstamp(&index), before, "an unchanged run committed");
    assert_eq!(
        index.inner.index.searchable_segment_ids().expect("ids"),
        segments
    );
    assert_eq!(index.repos().expect("repos"), listed);
    // Anything that changes commits: a new file, then the same tree under another root.
    std::fs::write(repo.path().join("c.rs"), "fn fresh() {}\n").expect("write");
    check_counts(&run(&index, "steady", repo.path()), (1, 0, 0, 2, 3));
    let after_new = opstamp(&index);
    assert!(after_new > before);
    let moved = write_repo(&[
        ("a.rs", "fn steady() {}\n"),
        ("b.py", "import a\n"),
        ("c.rs", "fn fresh() {}\n"),
    ]);
    check_counts(&run(&index, "steady", moved.path()), (0, 0, 0, 3, 3));
    assert!(opstamp(&index) > after_new, "a new root was not recorded");
    let root = &index.repos().expect("repos")[0].root;
    assert_eq!(root, &moved.path().canonicalize().expect("canonical"));
}

#[test]
fn two_repositories_in_one_index() {
    let one = write_repo(&[("x.rs", "fn shared_name() {}\n")]);
    let two = write_repo(&[("y.go", "package y\n\nfunc shared_name() {}\n")]);
    let (_dir, index) = index_dir();
    run(&index, "one", one.path());
    run(&index, "two", two.path());
    assert_eq!(count(&index, "shared_name"), 2);
    assert_eq!(count(&index, "shared_name repo:two"), 1);
    let repos = index.repos().expect("repos");
    let names: Vec<_> = repos.iter().map(|r| (r.name.as_str(), r.files)).collect();
    assert_eq!(names, [("one", 1), ("two", 1)]);
    assert_eq!(repos[0].root, one.path().canonicalize().expect("canonical"));
    assert!(repos[0].last_indexed > 0);
    // Re-indexing one repository leaves the other alone.
    std::fs::remove_file(one.path().join("x.rs")).expect("remove");
    check_counts(&run(&index, "one", one.path()), (0, 0, 1, 0, 0));
    assert_eq!(count(&index, "shared_name"), 1);
    index.remove_repo("two").expect("remove repo");
    assert_eq!(count(&index, "shared_name"), 0);
    assert_eq!(index.repos().expect("repos").len(), 1);
}

#[test]
fn repository_names() {
    let repo = write_repo(&[("a.rs", "fn a() {}\n")]);
    let (_dir, index) = index_dir();
    for bad in ["a/b", "", "x".repeat(65).as_str(), "..", "sp ace"] {
        if bad.is_empty() {
            continue;
        }
        let err = index
            .index_repo(bad, repo.path(), &IndexOptions::default(), &|_| {})
            .expect_err(bad);
        assert!(matches!(err, Error::RepoName { .. }), "{bad:?}: {err}");
    }
    // An empty name means the root directory's name.
    let report = index
        .index_repo("", repo.path(), &IndexOptions::default(), &|_| {})
        .expect("default name");
    let expected = repo
        .path()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    assert_eq!(report.repo, expected);
}

#[test]
fn second_writer_gets_a_clear_error() {
    let repo = write_repo(&[("a.rs", "fn a() {}\n")]);
    let (dir, first) = index_dir();
    run(&first, "r", repo.path());
    let second = CodeIndex::open(dir.path()).expect("a second reader opens fine");
    assert_eq!(
        count(&second, "a"),
        1,
        "readers work while another holds the writer"
    );
    let err = second
        .index_repo("r", repo.path(), &IndexOptions::default(), &|_| {})
        .expect_err("the writer lock is held");
    assert!(matches!(err, Error::IndexLocked { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("is being written by another process"),
        "{err}"
    );
    drop(first);
    second
        .index_repo("r", repo.path(), &IndexOptions::default(), &|_| {})
        .expect("the lock is free once the first index is dropped");
}

const SYMBOLS_RS: &str = "pub struct Parser {}\n\
impl Parser {\n    pub fn parse(&self) {}\n    pub fn parse_all(&self) {}\n}\n\
fn Parse() {}\nfn prase() {}\nfn parser_state() {}\nconst PARSE_LIMIT: u32 = 3;\n";

#[test]
fn an_overlong_symbol_name_is_a_bad_query_not_an_internal_error() {
    let repo = write_repo(&[("s.rs", SYMBOLS_RS)]);
    let (_dir, index) = index_dir();
    run(&index, "sym", repo.path());
    let long = "a".repeat(1000);
    match index.symbol(&long, &SymbolOptions::default()) {
        Err(crate::Error::Query(why)) => assert!(why.contains("256"), "{why}"),
        other => panic!("expected a bad query, got {other:?}"),
    }
    // The longest name allowed still runs every phase (exact, prefix, fuzzy) without hitting an automaton limit.
    let longest = "a".repeat(256);
    assert_eq!(
        index
            .symbol(&longest, &SymbolOptions::default())
            .expect("a 256-byte name is looked up")
            .len(),
        0
    );
}

#[test]
fn symbol_lookup_ranks_exact_prefix_fuzzy() {
    let repo = write_repo(&[("s.rs", SYMBOLS_RS)]);
    let (_dir, index) = index_dir();
    run(&index, "sym", repo.path());
    let hits = index
        .symbol(
            "parse",
            &SymbolOptions {
                limit: 50,
                ..SymbolOptions::default()
            },
        )
        .expect("symbol");
    let got: Vec<(&str, MatchKind)> = hits.iter().map(|h| (h.name.as_str(), h.matched)).collect();
    assert_eq!(
        got,
        [
            ("parse", MatchKind::Exact),
            ("Parse", MatchKind::Exact),
            // The struct and its impl block: shortest completions first.
            ("Parser", MatchKind::Prefix),
            ("Parser", MatchKind::Prefix),
            ("parse_all", MatchKind::Prefix),
            ("PARSE_LIMIT", MatchKind::Prefix),
            ("parser_state", MatchKind::Prefix),
            ("prase", MatchKind::Fuzzy),
        ]
    );
    let parse = &hits[0];
    assert_eq!(
        (parse.path.as_str(), parse.line, parse.kind),
        ("s.rs", 3, SymbolKind::Method)
    );
    assert_eq!(parse.container.as_deref(), Some("Parser"));
    assert!(
        parse.snippet.contains("pub fn parse(&self) {}"),
        "{}",
        parse.snippet
    );
    // Filters by kind and limit.
    let structs = index
        .symbol(
            "parse",
            &SymbolOptions {
                kind: Some(SymbolKind::Struct),
                ..SymbolOptions::default()
            },
        )
        .expect("symbol");
    assert_eq!(
        structs.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["Parser"]
    );
    let one = index
        .symbol(
            "parse",
            &SymbolOptions {
                limit: 1,
                ..SymbolOptions::default()
            },
        )
        .expect("symbol");
    assert_eq!(one.len(), 1);
    assert!(index.symbol("  ", &SymbolOptions::default()).is_err());
    let missing = index
        .symbol(
            "parse",
            &SymbolOptions {
                repo: Some("nope".into()),
                ..SymbolOptions::default()
            },
        )
        .expect_err("unknown repo");
    assert!(matches!(missing, Error::UnknownRepo(_)));
}

#[test]
fn outline_symbols_and_paths() {
    let repo = write_repo(&[
        ("src/s.rs", SYMBOLS_RS),
        ("other.py", "def f():\n    pass\n"),
    ]);
    let (_dir, index) = index_dir();
    run(&index, "out", repo.path());
    let outline = index.outline(Some("out"), "src/s.rs").expect("outline");
    let names: Vec<_> = outline.iter().map(|d| (d.name.as_str(), d.line)).collect();
    assert_eq!(
        names,
        [
            ("Parser", 1),
            ("Parser", 2),
            ("parse", 3),
            ("parse_all", 4),
            ("Parse", 6),
            ("prase", 7),
            ("parser_state", 8),
            ("PARSE_LIMIT", 9)
        ]
    );
    // The repository can be left out, and an absolute path works too.
    assert_eq!(
        index.outline(None, "src/s.rs").expect("outline").len(),
        outline.len()
    );
    let abs = repo.path().join("src/s.rs");
    assert_eq!(
        index
            .outline(None, abs.to_str().expect("utf-8"))
            .expect("outline")
            .len(),
        outline.len()
    );
    assert_eq!(
        index.resolve_path(&abs),
        Some(("out".to_string(), "src/s.rs".to_string()))
    );
    assert_eq!(
        index.resolve_path(Path::new("/definitely/not/indexed")),
        None
    );
    let err = index
        .outline(None, "src/none.rs")
        .expect_err("unknown file");
    assert!(
        err.to_string()
            .contains("no indexed repository has a file src/none.rs"),
        "{err}"
    );

    let mut all = Vec::new();
    let n = index
        .symbols(Some("out"), &mut |e| all.push((e.path, e.definition.name)))
        .expect("symbols");
    assert_eq!(n as usize, all.len());
    assert_eq!(
        all.first().map(|(p, n)| (p.as_str(), n.as_str())),
        Some(("other.py", "f"))
    );
    assert_eq!(all.len(), 9);
}

#[test]
fn deps_imports_importers_and_cycles() {
    let repo = write_repo(&[
        (
            "Cargo.toml",
            "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n",
        ),
        ("src/lib.rs", "mod a;\nmod b;\nmod c;\n"),
        ("src/a.rs", "use crate::b::Bee;\npub struct Ay;\n"),
        ("src/b.rs", "use crate::a::Ay;\npub struct Bee;\n"),
        ("src/c.rs", "use std::fmt;\nuse crate::y::Why;\n"),
    ]);
    let (_dir, index) = index_dir();
    run(&index, "deps", repo.path());
    let d = index.deps(Some("deps"), "src/a.rs", 1).expect("deps");
    let paths = |edges: &[super::DepEdge]| {
        edges
            .iter()
            .map(|e| (e.path.clone(), e.depth))
            .collect::<Vec<_>>()
    };
    assert_eq!(paths(&d.imports), [("src/b.rs".to_string(), 1)]);
    assert_eq!(
        paths(&d.importers),
        [("src/b.rs".to_string(), 1), ("src/lib.rs".to_string(), 1)]
    );
    let c = index.deps(None, "src/c.rs", 1).expect("deps");
    assert_eq!(c.external, ["std"]);
    // `crate::y` has no file yet, so it resolves to the deepest module reached: the crate root.
    assert_eq!(paths(&c.imports), [("src/lib.rs".to_string(), 1)]);
    let deep = index.deps(Some("deps"), "src/lib.rs", 2).expect("deps");
    assert_eq!(
        paths(&deep.imports),
        [
            ("src/a.rs".to_string(), 1),
            ("src/b.rs".to_string(), 1),
            ("src/c.rs".to_string(), 1)
        ]
    );
    assert_eq!(
        index.cycles("deps").expect("cycles"),
        [["src/a.rs", "src/b.rs"], ["src/c.rs", "src/lib.rs"]]
    );

    // Break the cycle, and add the file c.rs was waiting for: c.rs itself is unchanged, but its target moves.
    std::fs::write(repo.path().join("src/b.rs"), "pub struct Bee;\n").expect("write");
    std::fs::write(repo.path().join("src/y.rs"), "pub struct Why;\n").expect("write");
    std::fs::write(
        repo.path().join("src/lib.rs"),
        "mod a;\nmod b;\nmod c;\nmod y;\n",
    )
    .expect("write");
    let report = run(&index, "deps", repo.path());
    check_counts(&report, (1, 2, 0, 3, 6));
    assert!(index.cycles("deps").expect("cycles").is_empty());
    let y = index.deps(Some("deps"), "src/y.rs", 1).expect("deps");
    assert_eq!(
        paths(&y.importers),
        [("src/c.rs".to_string(), 1), ("src/lib.rs".to_string(), 1)]
    );
    let c = index.deps(None, "src/c.rs", 1).expect("deps");
    assert_eq!(paths(&c.imports), [("src/y.rs".to_string(), 1)]);
    assert!(index.deps(Some("deps"), "src/a.rs", 0).is_err());
    assert!(index.cycles("nope").is_err());
}

#[test]
fn index_directory_inside_the_repository_is_left_out() {
    let repo = write_repo(&[("a.rs", "fn a() {}\n")]);
    let dir = repo.path().join("data").join("index");
    let index = CodeIndex::open(&dir).expect("open");
    check_counts(&run(&index, "self", repo.path()), (1, 0, 0, 0, 1));
    // A second run sees the committed index files on disk, and still leaves them out.
    check_counts(&run(&index, "self", repo.path()), (0, 0, 0, 1, 1));
    let meta = dir.join("meta.json");
    let update = index.update_files("self", &[meta]).expect("update");
    assert!(
        update.added.is_empty() && update.changed.is_empty(),
        "{update:?}"
    );
    assert_eq!(count(&index, "\"index_settings\""), 0);
}

#[test]
fn checkpoints_commit_files_as_they_go_and_the_result_is_the_same() {
    let files = [
        (
            "Cargo.toml",
            "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n",
        ),
        ("src/lib.rs", "mod a;\nmod b;\nmod c;\n"),
        ("src/a.rs", "use crate::b::Bee;\npub struct Ay;\n"),
        ("src/b.rs", "use crate::a::Ay;\npub struct Bee;\n"),
        ("src/c.rs", "use std::fmt;\nuse crate::b::Bee;\n"),
    ];
    let repo = write_repo(&files);
    let (_dir, plain) = index_dir();
    run(&plain, "deps", repo.path());
    let (_dir2, stepped) = index_dir();
    let seen = std::sync::Mutex::new(Vec::new());
    let options = IndexOptions {
        commit_every: 2,
        ..IndexOptions::default()
    };
    let report = stepped
        .index_repo("deps", repo.path(), &options, &|p| {
            seen.lock().expect("not poisoned").push(p)
        })
        .expect("index");
    check_counts(&report, (5, 0, 0, 0, 5));
    let seen = seen.into_inner().expect("not poisoned");
    let commits: Vec<u64> = seen
        .iter()
        .filter_map(|p| match p {
            IndexProgress::Committed { files } => Some(*files),
            _ => None,
        })
        .collect();
    // Every second file at least triggers a commit, which takes what the walker's threads have indexed by then.
    assert!(!commits.is_empty() && commits.len() <= 2, "{seen:?}");
    assert!(commits[0] >= 2, "{seen:?}");
    assert!(commits.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(commits.iter().all(|&n| n <= 5), "{seen:?}");
    // Imports resolved at the end are the same as with one commit.
    for file in ["src/a.rs", "src/b.rs", "src/c.rs", "src/lib.rs"] {
        let a = plain.deps(Some("deps"), file, 2).expect("deps");
        let b = stepped.deps(Some("deps"), file, 2).expect("deps");
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "{file}");
    }
    assert_eq!(
        plain.cycles("deps").expect("cycles"),
        stepped.cycles("deps").expect("cycles")
    );
    assert_eq!(count(&plain, "Bee"), count(&stepped, "Bee"));
    // The checkpoints' records are the manifest of the next run: nothing is read as changed.
    let again = stepped
        .index_repo("deps", repo.path(), &options, &|_| {})
        .expect("index");
    check_counts(&again, (0, 0, 0, 5, 5));
}

#[test]
fn a_cancelled_run_keeps_what_its_checkpoints_committed_and_the_next_run_skips_it() {
    let files: Vec<(String, String)> = (0..12)
        .map(|i| (format!("f{i:02}.rs"), format!("fn f{i}() {{}}\n")))
        .collect();
    let repo = write_made_repo(&files);
    let (_dir, index) = index_dir();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let options = IndexOptions {
        commit_every: 3,
        cancel: vec![stop.clone()],
        // One thread, so that the cancel lands between the first checkpoint and the end.
        parse_threads: 1,
        ..IndexOptions::default()
    };
    let committed = std::sync::Mutex::new(0);
    let err = index
        .index_repo("c", repo.path(), &options, &|p| {
            if let IndexProgress::Committed { files } = p {
                *committed.lock().expect("not poisoned") = files;
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .expect_err("cancelled");
    assert!(matches!(err, crate::Error::Cancelled), "{err}");
    let committed = committed.into_inner().expect("not poisoned");
    assert!((3..12).contains(&committed), "{committed}");
    // What the checkpoint committed is searchable and known to the next run, which indexes only the rest.
    stop.store(false, std::sync::atomic::Ordering::Relaxed);
    let report = index
        .index_repo("c", repo.path(), &options, &|_| {})
        .expect("index");
    check_counts(&report, (12 - committed, 0, 0, committed, 12));
    assert_eq!(report.files, 12);
}

#[test]
fn a_plain_word_also_finds_substrings_ranked_below_identifier_matches_and_labelled() {
    use super::LineMatch;
    let repo = write_repo(&[
        (
            "src/bytes.rs",
            "pub struct ByteStr { inner: Vec<u8> }\nfn use_it(b: &ByteStr) {}\n",
        ),
        (
            "lib/dom.js",
            "function getCorruptedNodeIdByteString(node) {\n  return node.id;\n}\n",
        ),
        (
            "lib/other.js",
            "const bytestrings = 1; // lowercase inside\n",
        ),
    ]);
    let (_dir, index) = index_dir();
    run(&index, "mixed", repo.path());
    let search = |query: &str, limit: usize| hits_of(&index, query, limit);
    let hits = search("ByteStr", 10);
    let shown: Vec<(&str, u32, LineMatch)> = hits
        .iter()
        .map(|h| (h.path.as_str(), h.line, h.matched))
        .collect();
    // The identifier's own lines first (its definition first of all), then the substrings, each labelled.
    assert_eq!(
        shown,
        [
            ("src/bytes.rs", 1, LineMatch::Identifier),
            ("src/bytes.rs", 2, LineMatch::Identifier),
            ("lib/dom.js", 1, LineMatch::Substring),
            ("lib/other.js", 1, LineMatch::Substring),
        ],
        "{hits:#?}"
    );
    assert!(hits[2].score < hits[1].score);
    // A word that is no identifier at all is found only as a substring.
    let only = search("NodeIdByte", 10);
    assert_eq!(only.len(), 1, "{only:#?}");
    assert_eq!(
        (only[0].path.as_str(), only[0].matched),
        ("lib/dom.js", LineMatch::Substring)
    );
    // The fill never goes past the limit, and is not needed when identifiers fill it.
    assert_eq!(search("ByteStr", 3).len(), 3);
    let two = search("ByteStr", 2);
    assert!(
        two.iter().all(|h| h.matched == LineMatch::Identifier),
        "{two:#?}"
    );
    // Text queries say so.
    let text = search("\"node.id\"", 10);
    assert_eq!(text.len(), 1);
    assert_eq!(text[0].matched, LineMatch::Text);
}

#[test]
fn an_exact_name_definition_ranks_first() {
    let repo = write_repo(&[
        (
            "src/config.rs",
            "pub struct Config {\n    searcher: Searcher,\n    other: u32,\n}\nfn make(s: Searcher) -> Searcher { s }\n",
        ),
        (
            "src/builder.rs",
            "pub struct SearcherBuilder {\n    limit: usize,\n}\nimpl SearcherBuilder {\n    fn build(self) -> Searcher { todo() }\n}\n",
        ),
        ("src/searcher.rs", "pub struct Searcher {\n    depth: u32,\n}\n"),
    ]);
    let (_dir, index) = index_dir();
    run(&index, "ranks", repo.path());
    let hits = index
        .search(
            "Searcher",
            &SearchOptions {
                limit: 3,
                ..SearchOptions::default()
            },
        )
        .expect("search");
    let top: Vec<(&str, Option<&str>)> = hits
        .iter()
        .map(|h| (h.path.as_str(), h.name.as_deref()))
        .collect();
    assert_eq!(top[0], ("src/searcher.rs", Some("Searcher")), "{hits:#?}");
    // The field of that exact name (another case) comes before a longer name that only contains it.
    assert_eq!(top[1], ("src/config.rs", Some("searcher")), "{hits:#?}");
}

#[test]
fn an_index_written_before_repository_totals_were_stored_lists_the_same() {
    let repo = write_repo(&[
        ("a.rs", "fn a() {}\nfn b() {}\n"),
        ("b.py", "def c():\n    pass\n"),
    ]);
    let (_dir, index) = index_dir();
    run(&index, "r", repo.path());
    let listed = index.repos().expect("repos");
    assert_eq!(
        (listed[0].files, listed[0].lines, listed[0].symbols),
        (2, 4, 3)
    );
    // Rewrite the repository's record the way indexes were written before it kept totals.
    {
        use super::schema::{file_key, KIND_REPO};
        let inner = &index.inner;
        let f = &inner.fields;
        let mut guard = inner
            .writer(super::WriterSettings::from_options(&IndexOptions::default()))
            .expect("writer");
        let writer = guard.as_mut().expect("the writer exists once taken");
        writer.delete_term(tantivy::Term::from_field_text(f.key, &file_key("r", "")));
        let mut doc = tantivy::TantivyDocument::new();
        doc.add_text(f.kind, KIND_REPO);
        doc.add_text(f.repo, "r");
        doc.add_text(f.key, file_key("r", ""));
        let old =
            serde_json::json!({ "root": listed[0].root, "last_indexed": listed[0].last_indexed });
        doc.add_text(f.repo_json, old.to_string());
        writer.add_document(doc).expect("add");
        writer.commit().expect("commit");
        drop(guard);
        inner.reload().expect("reload");
    }
    assert_eq!(index.repos().expect("repos"), listed);
}

#[test]
fn opening_tries_again_when_a_segment_file_was_replaced() {
    use tantivy::directory::error::OpenReadError;
    use tantivy::TantivyError;
    fn gone<T>() -> tantivy::Result<T> {
        Err(TantivyError::OpenReadError(
            OpenReadError::FileDoesNotExist("x.idx".into()),
        ))
    }
    // Gone twice, then there: opened on the third attempt.
    let mut calls = 0;
    let opened = super::again_if_replaced(|| {
        calls += 1;
        if calls < 3 {
            gone()
        } else {
            Ok(calls)
        }
    });
    assert_eq!(opened.expect("opened"), 3);
    // Gone every time: the error after the last attempt.
    let mut calls = 0;
    let failed: tantivy::Result<()> = super::again_if_replaced(|| {
        calls += 1;
        gone()
    });
    assert!(matches!(
        failed,
        Err(TantivyError::OpenReadError(
            OpenReadError::FileDoesNotExist(_)
        ))
    ));
    assert_eq!(calls, super::REOPEN_ATTEMPTS);
    // Any other error: at once.
    let mut calls = 0;
    let other: tantivy::Result<()> = super::again_if_replaced(|| {
        calls += 1;
        Err(TantivyError::InvalidArgument("bad".to_string()))
    });
    assert!(other.is_err());
    assert_eq!(calls, 1);
}

/// One process indexes (every run merges and deletes replaced segment files) while another opens the index and
/// searches, over and over: no open fails on a file the merge deleted.
#[test]
fn a_reader_opening_beside_merging_runs_never_finds_a_file_gone() {
    let (dir, writer) = index_dir();
    let repos: Vec<_> = (0..3)
        .map(|i| write_repo(&[("a.rs", &format!("fn racing_{i}() {{}}\n"))]))
        .collect();
    run(&writer, "r0", repos[0].path());
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let indexer = scope.spawn(|| {
            for round in 0..40 {
                let i = round % repos.len();
                std::fs::write(
                    repos[i].path().join("a.rs"),
                    format!("fn racing_{i}() {{}}\nfn round_{round}() {{}}\n"),
                )
                .expect("write");
                run(&writer, &format!("r{i}"), repos[i].path());
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let mut opened = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let reader =
                CodeIndex::open_following(dir.path(), dir.path(), super::Follow::OwnCommits)
                    .expect("opening beside a merge");
            reader
                .search("racing_0", &SearchOptions::default())
                .expect("searching beside a merge");
            opened += 1;
        }
        indexer.join().expect("indexer");
        assert!(opened > 0);
    });
}

/// A file's chunks always follow its `file` document, in order, after files are changed, deleted and added over
/// several runs and their segments merged: read back through the chunk columns, every file's text is what is on
/// disk, and no chunk is left over.
#[test]
fn every_files_chunks_follow_it_after_changes_deletes_and_merges() {
    let text = |i: usize, version: usize| -> String {
        // Sizes from one line to many chunks.
        let lines = (i * 37 + version * 11) % 4000 + 1;
        (0..lines)
            .map(|l| format!("let v{version}_{i}_{l} = {l}; // line {l} of file {i}\n"))
            .collect()
    };
    let mut files: std::collections::BTreeMap<String, String> = (0..40)
        .map(|i| (format!("src/f{i:02}.rs"), text(i, 0)))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let index = CodeIndex::open(dir.path()).expect("open index");
    let repo = tempfile::tempdir().expect("repo dir");
    for version in 0..4 {
        if version > 0 {
            for i in (version..40).step_by(3) {
                files.insert(format!("src/f{i:02}.rs"), text(i, version));
            }
            files.remove(&format!("src/f{:02}.rs", version * 5));
            files.insert(format!("src/new{version}.rs"), text(version * 7, version));
        }
        let _ = std::fs::remove_dir_all(repo.path().join("src"));
        std::fs::create_dir_all(repo.path().join("src")).expect("mkdir");
        for (path, body) in &files {
            std::fs::write(repo.path().join(path), body).expect("write");
        }
        run(&index, "r", repo.path());
    }
    let inner = &index.inner;
    let searcher = inner.reader.searcher();
    let f = &inner.fields;
    let cols = super::text::ChunkColumns::open(&searcher).expect("columns");
    let all = searcher
        .search(
            &tantivy::query::AllQuery,
            &tantivy::collector::DocSetCollector,
        )
        .expect("all documents");
    let (mut seen, mut chunks_expected, mut chunks_found) = (0, 0, 0);
    for addr in all {
        let doc: tantivy::TantivyDocument = searcher.doc(addr).expect("doc");
        let kind = super::stored_str(&doc, f.kind);
        if cols.chunk_no(addr).is_some() {
            chunks_found += 1;
            continue;
        }
        // `kind` is not stored; a file document is one with definitions stored and chunks after it.
        assert!(kind.is_none());
        let Some(path) = super::stored_str(&doc, f.path) else {
            continue;
        };
        if super::stored_str(&doc, f.file_defs).is_none() {
            continue;
        }
        let body = files
            .get(path)
            .unwrap_or_else(|| panic!("{path} is gone yet indexed"));
        let whole = super::text::whole_text(&searcher, f, &cols, addr, "r", path).expect("text");
        assert_eq!(&whole, body, "{path}");
        chunks_expected += super::text::cut(body).len();
        seen += 1;
    }
    assert_eq!(seen, files.len());
    assert_eq!(chunks_found, chunks_expected, "chunks without a file");
    assert!(
        chunks_expected > files.len() * 3,
        "{chunks_expected} chunks: too few large files"
    );
}

#[test]
fn catch_up_sees_another_processs_commits_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let open = || {
        CodeIndex::open_following(dir.path(), dir.path(), super::Follow::OwnCommits).expect("open")
    };
    let (answering, writing) = (open(), open());
    let repo = write_repo(&[("src/a.rs", "fn lighthouse_keeper() {}\n")]);
    run(&writing, "coast", repo.path());
    assert_eq!(count(&answering, "lighthouse_keeper"), 0, "reloaded alone");
    answering.catch_up().expect("catch up");
    assert_eq!(count(&answering, "lighthouse_keeper"), 1);
    // Nothing committed since: the same searcher stays.
    let generation = answering
        .inner
        .reader
        .searcher()
        .generation()
        .generation_id();
    answering.catch_up().expect("catch up");
    assert_eq!(
        answering
            .inner
            .reader
            .searcher()
            .generation()
            .generation_id(),
        generation
    );
    std::fs::write(repo.path().join("src/b.rs"), "fn harbour_master() {}\n").expect("write");
    run(&writing, "coast", repo.path());
    answering.catch_up().expect("catch up");
    assert_eq!(count(&answering, "harbour_master"), 1);
    // A path relative to another working directory resolves as it would there.
    let located = answering.locate_from(repo.path(), None, "src/b.rs");
    assert_eq!(located, (Some("coast".to_string()), "src/b.rs".to_string()));
    assert_eq!(
        answering.locate_from(Path::new("/"), None, "src/b.rs"),
        (None, "src/b.rs".to_string())
    );
}
