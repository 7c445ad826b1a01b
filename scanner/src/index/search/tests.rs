//! Search correctness against a real Tantivy index in a temporary directory.

use std::path::Path;

use super::super::tokenizer::lowercase;
use crate::index::{CodeIndex, IndexOptions, SearchHit, SearchOptions};

const LIB_RS: &str = r#"//! A small library.
use std::collections::HashMap;

/// Parses a response.
pub fn parseHTTPResponse2(input: &str) -> usize {
    let foo_bar = input.len();
    foo_bar + 1
}

pub struct FooBar {
    count: usize,
}

pub fn parse_query(q: &str) -> FooBar {
    let _ = parseHTTPResponse2(q);
    FooBar { count: 0 }
}
"#;

const UTIL_PY: &str = r#"import os

def parse_query(text):
    """Parse a query string."""
    return text.split()

class Runner:
    def run(self):
        return parse_query("a b")
"#;

const NOTES_MD: &str = "Notes\nlet x = 1 is not code here\nFOOBAR in capitals\n";

/// Writes `files` under a fresh directory.
/// [`write_repo`] for files whose paths and texts were made at run time.
pub(crate) fn write_made_repo(files: &[(String, String)]) -> tempfile::TempDir {
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    write_repo(&borrowed)
}

pub(crate) fn write_repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write file");
    }
    dir
}

struct Fixture {
    _repo: tempfile::TempDir,
    _other: tempfile::TempDir,
    _dir: tempfile::TempDir,
    index: CodeIndex,
}

fn fixture() -> Fixture {
    let repo = write_repo(&[
        ("src/lib.rs", LIB_RS),
        ("tools/util.py", UTIL_PY),
        ("notes.md", NOTES_MD),
    ]);
    let other = write_repo(&[(
        "main.go",
        "package main\n\nfunc fooBarGo() int {\n\treturn 1\n}\n",
    )]);
    let dir = tempfile::tempdir().expect("temp dir");
    let index = CodeIndex::open(dir.path()).expect("open index");
    index
        .index_repo("demo", repo.path(), &IndexOptions::default(), &|_| {})
        .expect("index demo");
    index
        .index_repo("other", other.path(), &IndexOptions::default(), &|_| {})
        .expect("index other");
    Fixture {
        _repo: repo,
        _other: other,
        _dir: dir,
        index,
    }
}

/// The hits of `query`, at most `limit`; a failure names the query.
pub(crate) fn hits_of(index: &CodeIndex, query: &str, limit: usize) -> Vec<SearchHit> {
    index
        .search(
            query,
            &SearchOptions {
                limit,
                ..SearchOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("search {query:?} failed: {e}"))
}

/// The hits of `query` with a limit of 1,000.
pub(crate) fn search_all(index: &CodeIndex, query: &str) -> Vec<SearchHit> {
    hits_of(index, query, 1000)
}

/// Every hit of `query` (no practical limit), as sorted `repo:path:line`.
fn every_line(index: &CodeIndex, query: &str) -> Vec<String> {
    let mut got = render(&hits_of(index, query, 1_000_000));
    got.sort();
    got
}

fn render(hits: &[SearchHit]) -> Vec<String> {
    hits.iter()
        .map(|h| format!("{}:{}:{}", h.repo, h.path, h.line))
        .collect()
}

/// Runs `query` and compares the hits (as `repo:path:line`, in ranking order when `ordered`, else sorted), leaving
/// out the substring fill (tested on its own).
fn check(fx: &Fixture, query: &str, ordered: bool, expected: &[&str]) {
    let mut hits = fx
        .index
        .search(
            query,
            &SearchOptions {
                limit: 100,
                ..SearchOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("search {query:?} failed: {e}"));
    hits.retain(|h| h.matched != crate::index::LineMatch::Substring);
    let mut got = render(&hits);
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    if !ordered {
        got.sort();
        want.sort();
    }
    assert_eq!(got, want, "hits of {query:?}");
}

#[test]
fn identifier_matches_parts() {
    let fx = fixture();
    // `FOOBAR` in notes.md is one word with no parts, so `foo` does not match it; `fooBarGo` has the part `foo`.
    check(
        &fx,
        "foo",
        false,
        &[
            "demo:src/lib.rs:6",
            "demo:src/lib.rs:7",
            "demo:src/lib.rs:10",
            "demo:src/lib.rs:14",
            "demo:src/lib.rs:16",
            "other:main.go:3",
        ],
    );
    // ... but it holds `foo` as a substring: that line comes after them, labelled.
    let hits = fx
        .index
        .search(
            "foo",
            &SearchOptions {
                limit: 100,
                ..SearchOptions::default()
            },
        )
        .expect("search");
    let last = hits.last().expect("hits");
    assert_eq!(
        (last.path.as_str(), last.line, last.matched),
        ("notes.md", 3, crate::index::LineMatch::Substring)
    );
}

#[test]
fn identifier_whole_and_acronym_part() {
    let fx = fixture();
    check(
        &fx,
        "http",
        false,
        &["demo:src/lib.rs:5", "demo:src/lib.rs:15"],
    );
    check(
        &fx,
        "parseHTTPResponse2",
        false,
        &["demo:src/lib.rs:5", "demo:src/lib.rs:15"],
    );
}

#[test]
fn definitions_rank_first() {
    let fx = fixture();
    let hits = fx
        .index
        .search("parse_query", &SearchOptions::default())
        .expect("search");
    let defs: Vec<_> = hits
        .iter()
        .take(2)
        .map(|h| (h.path.as_str(), h.line, h.kind.is_some()))
        .collect();
    assert!(
        defs.contains(&("src/lib.rs", 14, true)),
        "{:?}",
        render(&hits)
    );
    assert!(
        defs.contains(&("tools/util.py", 3, true)),
        "{:?}",
        render(&hits)
    );
    assert_eq!(hits.len(), 3, "{:?}", render(&hits));
}

#[test]
fn substring_across_token_boundary() {
    let fx = fixture();
    check(&fx, r#""o_bar +""#, false, &["demo:src/lib.rs:7"]);
    check(&fx, "input.len()", false, &["demo:src/lib.rs:6"]);
}

#[test]
fn phrase_with_spaces() {
    let fx = fixture();
    check(&fx, r#""let x = 1""#, false, &["demo:notes.md:2"]);
}

#[test]
fn short_needle_scans_all_files() {
    let fx = fixture();
    check(&fx, r#""{ c""#, false, &["demo:src/lib.rs:16"]);
}

#[test]
fn regex_search() {
    let fx = fixture();
    check(
        &fx,
        r"/fn\s+parse\w*\(/",
        false,
        &["demo:src/lib.rs:5", "demo:src/lib.rs:14"],
    );
    check(&fx, r"/^def /", false, &["demo:tools/util.py:3"]);
    check(&fx, r"/\d+\)$/", false, &[]);
}

#[test]
fn case_sensitivity() {
    let fx = fixture();
    check(
        &fx,
        r#""FOOBAR""#,
        false,
        &[
            "demo:src/lib.rs:10",
            "demo:src/lib.rs:14",
            "demo:src/lib.rs:16",
            "demo:notes.md:3",
            "other:main.go:3",
        ],
    );
    check(&fx, r#""FOOBAR" case:yes"#, false, &["demo:notes.md:3"]);
    check(&fx, r"/foobar/ case:yes", false, &[]);
}

#[test]
fn filters() {
    let fx = fixture();
    check(
        &fx,
        "parse_query lang:python",
        false,
        &["demo:tools/util.py:3", "demo:tools/util.py:9"],
    );
    check(&fx, "foo path:*.go", false, &["other:main.go:3"]);
    check(
        &fx,
        "foo path:src/*.rs repo:demo",
        false,
        &[
            "demo:src/lib.rs:6",
            "demo:src/lib.rs:7",
            "demo:src/lib.rs:10",
            "demo:src/lib.rs:14",
            "demo:src/lib.rs:16",
        ],
    );
    check(&fx, "foo repo:other", false, &["other:main.go:3"]);
    check(&fx, "foo path:nothing/here", false, &[]);
    let only_go = fx
        .index
        .search(
            "foo",
            &SearchOptions {
                lang: Some(crate::model::Lang::Go),
                ..SearchOptions::default()
            },
        )
        .expect("search");
    assert_eq!(render(&only_go), ["other:main.go:3"]);
}

#[test]
fn terms_are_anded_per_file() {
    let fx = fixture();
    // Both terms occur in util.py only; the hits are the lines where either does.
    check(
        &fx,
        "parse_query runner",
        false,
        &[
            "demo:tools/util.py:3",
            "demo:tools/util.py:7",
            "demo:tools/util.py:9",
        ],
    );
}

#[test]
fn sym_filter_finds_definitions() {
    let fx = fixture();
    check(&fx, "sym:FooBar", false, &["demo:src/lib.rs:10"]);
}

#[test]
fn snippet_has_context() {
    let fx = fixture();
    let hits = fx
        .index
        .search(r#""struct FooBar""#, &SearchOptions::default())
        .expect("search");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].snippet, "\npub struct FooBar {\n    count: usize,");
}

#[test]
fn errors_are_clear() {
    let fx = fixture();
    for (query, want) in [
        ("/unclosed", "unclosed regex"),
        ("foo lang:", "lang: needs a value"),
        ("foo lang:cobol", "lang:cobol"),
        ("/a(/", "not a valid regular expression"),
        ("foo repo:nope", "no repository named \"nope\""),
    ] {
        let err = fx
            .index
            .search(query, &SearchOptions::default())
            .expect_err(query);
        assert!(err.to_string().contains(want), "{query:?} gave {err}");
    }
}

/// A tiny deterministic generator, so the property test is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The scanner's own `src/*.rs` files, copied to a repository named `name` and indexed: real code for the
/// property tests. Returns the files (name, text), the repository and index directories, and the index.
fn index_own_sources(
    name: &str,
) -> (
    Vec<(String, String)>,
    tempfile::TempDir,
    tempfile::TempDir,
    CodeIndex,
) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(&src).expect("read src") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            files.push((name, std::fs::read_to_string(&path).expect("read")));
        }
    }
    files.sort();
    let repo = write_made_repo(&files);
    let dir = tempfile::tempdir().expect("temp dir");
    let index = CodeIndex::open(dir.path()).expect("open");
    index
        .index_repo(name, repo.path(), &IndexOptions::default(), &|_| {})
        .expect("index");
    (files, repo, dir, index)
}

/// Every substring hit must be a real line containing the needle, and with a large limit the set of hits must be
/// exactly what a naive scan of the files finds — for literal and for regex-escaped needles.
#[test]
fn substring_hits_equal_naive_scan() {
    let (files, _repo, _dir, index) = index_own_sources("p");
    let lines: Vec<(&str, usize, &str)> = files
        .iter()
        .flat_map(|(p, t)| {
            t.lines()
                .enumerate()
                .map(move |(i, l)| (p.as_str(), i + 1, l))
        })
        .filter(|(_, _, l)| !l.trim().is_empty())
        .collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for round in 0..60 {
        let (_, _, line) = lines[rng.below(lines.len())];
        let chars: Vec<char> = line.chars().collect();
        let len = 1 + rng.below(12.min(chars.len()));
        let start = rng.below(chars.len() - len + 1);
        let needle: String = chars[start..start + len].iter().collect();
        let lower = lowercase(&needle);
        let mut naive: Vec<String> = files
            .iter()
            .flat_map(|(p, t)| {
                let lower = &lower;
                t.lines()
                    .enumerate()
                    .filter(move |(_, l)| lowercase(l).contains(lower.as_str()))
                    .map(move |(i, _)| format!("p:{p}:{}", i + 1))
            })
            .collect();
        naive.sort();
        let quoted = format!("\"{}\"", needle.replace('\\', "\\\\").replace('"', "\\\""));
        let regex = format!("/{}/", regex::escape(&needle).replace('/', "\\/"));
        for query in [quoted, regex] {
            let hits = hits_of(&index, &query, 1_000_000);
            for h in &hits {
                let text = &files
                    .iter()
                    .find(|(p, _)| *p == h.path)
                    .expect("hit file exists")
                    .1;
                let line = text
                    .lines()
                    .nth(h.line as usize - 1)
                    .expect("hit line exists");
                assert!(
                    lowercase(line).contains(&lower),
                    "round {round}: {query:?} hit {}:{} {line:?}",
                    h.path,
                    h.line
                );
            }
            let mut got = render(&hits);
            got.sort();
            assert_eq!(got, naive, "round {round}: {query:?}");
        }
    }
}

/// Builds a random regex from a piece of `line`: some characters become `.`, classes, optional or repeated pieces,
/// and sometimes an alternation with another piece, so the trigram analysis sees every kind of node.
fn random_regex(rng: &mut XorShift, line: &str, other: &str) -> String {
    let pick = |rng: &mut XorShift, text: &str| -> Vec<char> {
        let chars: Vec<char> = text.chars().collect();
        let len = 1 + rng.below(10.min(chars.len()));
        let start = rng.below(chars.len() - len + 1);
        chars[start..start + len].to_vec()
    };
    let piece = |rng: &mut XorShift, chars: &[char]| -> String {
        let mut out = String::new();
        for &c in chars {
            let lit = regex::escape(&c.to_string());
            out.push_str(&match rng.below(12) {
                0 => ".".to_string(),
                1 => format!("[{}x]", lit),
                2 => format!("{lit}?"),
                3 => format!("{lit}+"),
                4 if c.is_alphanumeric() => "\\w".to_string(),
                5 if c == ' ' => "\\s+".to_string(),
                6 => format!("(?:{lit})*"),
                _ => lit,
            });
        }
        out
    };
    let first = pick(rng, line);
    let mut re = piece(rng, &first);
    if rng.below(4) == 0 {
        let second = pick(rng, other);
        re = format!("(?:{re}|{})", piece(rng, &second));
    }
    re
}

/// Regex search must find exactly the lines a plain per-line regex scan finds, whatever trigrams the analysis keeps.
#[test]
fn regex_hits_equal_naive_scan() {
    let (files, _repo, _dir, index) = index_own_sources("r");
    let lines: Vec<&str> = files
        .iter()
        .flat_map(|(_, t)| t.lines())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    for round in 0..60 {
        let line = lines[rng.below(lines.len())];
        let other = lines[rng.below(lines.len())];
        let pattern = random_regex(&mut rng, line, other);
        for case_sensitive in [false, true] {
            let re = regex::RegexBuilder::new(&pattern)
                .case_insensitive(!case_sensitive)
                .build()
                .unwrap_or_else(|e| {
                    panic!("round {round}: generated an invalid regex {pattern:?}: {e}")
                });
            let mut naive: Vec<String> = files
                .iter()
                .flat_map(|(p, t)| {
                    let re = &re;
                    t.lines()
                        .enumerate()
                        .filter(move |(_, l)| re.is_match(l))
                        .map(move |(i, _)| format!("r:{p}:{}", i + 1))
                })
                .collect();
            naive.sort();
            let query = format!(
                "/{}/{}",
                pattern.replace('/', "\\/"),
                if case_sensitive { " case:yes" } else { "" }
            );
            assert_eq!(
                every_line(&index, &query),
                naive,
                "round {round}: {query:?}"
            );
        }
    }
}

#[test]
fn limit_stops_early_and_is_respected() {
    let fx = fixture();
    for limit in [1, 2, 3] {
        let hits = fx
            .index
            .search(
                r#""e""#,
                &SearchOptions {
                    limit,
                    ..SearchOptions::default()
                },
            )
            .expect("search");
        assert_eq!(hits.len(), limit);
    }
}

/// A repository with one line of 900 KB, the shape on which unbounded regexes took minutes.
fn long_line_index() -> (tempfile::TempDir, tempfile::TempDir, CodeIndex) {
    let line = format!("{}c", "a".repeat(900_000));
    let repo = write_repo(&[("big.txt", &format!("{line}\nshort aab line\n"))]);
    let dir = tempfile::tempdir().expect("temp dir");
    let index = CodeIndex::open(dir.path()).expect("open");
    let mut options = IndexOptions::default();
    options.walk.max_file_size = 4 << 20;
    index
        .index_repo("big", repo.path(), &options, &|_| {})
        .expect("index");
    (repo, dir, index)
}

#[test]
fn a_regex_too_large_to_run_cheaply_is_refused_before_any_work() {
    let (_repo, _dir, index) = long_line_index();
    let started = std::time::Instant::now();
    for query in ["/a{4000}b/", "/a{100000}/", "/.{4000}b/"] {
        match index.search(query, &SearchOptions::default()) {
            Err(crate::Error::TooExpensive(why)) => {
                assert!(why.contains("query_max_regex_states"), "{why}")
            }
            other => panic!("{query}: expected TooExpensive, got {other:?}"),
        }
    }
    // Under the limit the same shape runs, and fast: the limit sits below the regex engine's cliff.
    let hits = index
        .search("/a{1000}b/", &SearchOptions::default())
        .expect("a small repetition runs");
    assert!(hits.is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn a_search_past_its_deadline_or_cancelled_stops_with_its_own_error() {
    let (_repo, _dir, index) = long_line_index();
    let timed = SearchOptions {
        budget: crate::Budget {
            timeout: Some(std::time::Duration::ZERO),
            ..crate::Budget::default()
        },
        ..SearchOptions::default()
    };
    match index.search("/a+c/", &timed) {
        Err(crate::Error::Timeout { limit }) => assert_eq!(limit, std::time::Duration::ZERO),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let cancelled = SearchOptions {
        budget: crate::Budget {
            cancel: vec![flag],
            ..crate::Budget::default()
        },
        ..SearchOptions::default()
    };
    assert!(matches!(
        index.search("/a+c/", &cancelled),
        Err(crate::Error::Cancelled)
    ));
    let small = SearchOptions {
        budget: crate::Budget {
            max_scan_bytes: Some(1000),
            ..crate::Budget::default()
        },
        ..SearchOptions::default()
    };
    match index.search("/a+c/", &small) {
        Err(crate::Error::TooExpensive(why)) => {
            assert!(why.contains("query_max_scan_bytes"), "{why}")
        }
        other => panic!("expected TooExpensive, got {other:?}"),
    }
    // Within its budget the same query answers.
    let hits = index
        .search("/a+c/", &SearchOptions::default())
        .expect("search");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].snippet.chars().count() < 1000);
}

#[test]
fn a_cancellation_from_another_thread_stops_a_running_search() {
    // Many files, each verified in turn: the flag is seen between files.
    let text = "fn alpha() {}\n".repeat(200);
    let files: Vec<(String, String)> = (0..400)
        .map(|i| (format!("src/f{i}.rs"), text.clone()))
        .collect();
    let repo = write_made_repo(&files);
    let dir = tempfile::tempdir().expect("temp dir");
    let index = CodeIndex::open(dir.path()).expect("open");
    index
        .index_repo("many", repo.path(), &IndexOptions::default(), &|_| {})
        .expect("index");
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let options = SearchOptions {
        limit: usize::MAX,
        budget: crate::Budget {
            cancel: vec![flag.clone()],
            ..crate::Budget::unlimited()
        },
        ..SearchOptions::default()
    };
    use std::sync::atomic::{AtomicU64, Ordering};
    let rounds = std::sync::Arc::new(AtomicU64::new(0));
    let searcher = {
        let rounds = rounds.clone();
        std::thread::spawn(move || loop {
            match index.search("/al.ha/", &options) {
                Ok(hits) => {
                    assert_eq!(hits.len(), 400 * 200);
                    rounds.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return e,
            }
        })
    };
    // Once a whole search has run, cancel the ones that follow, wherever they are.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while rounds.load(Ordering::Relaxed) == 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(rounds.load(Ordering::Relaxed) > 0, "no search finished");
    flag.store(true, Ordering::Relaxed);
    let error = searcher.join().expect("search thread");
    assert!(matches!(error, crate::Error::Cancelled), "{error:?}");
}

/// Past the first files, candidates are verified a chunk at a time on several threads: every matching line is still
/// found once, and a limit still cuts the answer at exactly that many lines.
#[test]
fn many_candidate_files_are_verified_in_parallel_and_in_order() {
    let files: Vec<(String, String)> = (0..150)
        .map(|i| {
            (
                format!("src/f{i:03}.rs"),
                format!("fn chunked_{i}() {{}}\n// filler\nfn other_{i}() {{ chunked_marker(); chunked_marker(); }}\n"),
            )
        })
        .collect();
    let repo = write_made_repo(&files);
    let dir = tempfile::tempdir().expect("temp dir");
    let index = CodeIndex::open(dir.path()).expect("open");
    index
        .index_repo("p", repo.path(), &IndexOptions::default(), &|_| {})
        .expect("index");
    let search = |query: &str, limit: usize| -> Vec<(String, u32)> {
        let hits = index
            .search(
                query,
                &SearchOptions {
                    limit,
                    ..SearchOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let mut lines: Vec<(String, u32)> = hits.iter().map(|h| (h.path.clone(), h.line)).collect();
        let count = lines.len();
        lines.sort();
        lines.dedup();
        assert_eq!(lines.len(), count, "{query}: a line came twice");
        lines
    };
    // Unscored (a literal) and scored (an identifier): all 150 lines, each once.
    for query in ["\"chunked_marker();\"", "chunked_marker"] {
        let all = search(query, 1000);
        let expected: Vec<(String, u32)> =
            (0..150).map(|i| (format!("src/f{i:03}.rs"), 3)).collect();
        assert_eq!(all, expected, "{query}");
        // A limit cuts at exactly that many, all of them real.
        let some = search(query, 70);
        assert_eq!(some.len(), 70, "{query}");
        assert!(some.iter().all(|l| all.contains(l)), "{query}");
    }
}

/// The whole-text check that skips a term in a candidate before its lines are indexed only skips terms for which
/// line-by-line matching finds nothing, for every kind of term and both cases; and it keeps those that do match.
#[test]
fn the_whole_text_check_skips_only_terms_without_a_match() {
    use super::{
        ascii_finders, lowered, reads_lower, term_absent, term_lines, LineIndex, Matcher, Meter,
    };
    let texts = [
        "fn main() {\n    let ByteString = 1;\n}\n",
        "let parse = parser.parse(Parse);\nbyte BYTE bYtE\nquery(x query(X\n",
        "no match here\n",
        "line one\r\nKelvin \u{212A} sign\n",
        "",
        "parse_query(x)\nPARSE_QUERY\nsparser\n",
    ];
    let budget = crate::index::Budget::default();
    let meter = Meter::start(&budget);
    let (mut skipped, mut matched, mut ascii_checked, mut finder_checked) = (0, 0, 0, 0);
    for case_sensitive in [false, true] {
        let literal = |s: &str| Matcher::Literal {
            needle: s.to_string(),
            lower: lowercase(s),
        };
        let regex = |re: &str| {
            Matcher::Regex(crate::query::build_regex(re, case_sensitive).expect("a valid regex"))
        };
        let matchers = [
            Matcher::Ident("parse".to_string()),
            Matcher::Ident("bytestring".to_string()),
            Matcher::Ident("parser".to_string()),
            literal("Byte"),
            literal("query(x"),
            literal("one\nKelvin"),
            literal("k sign"),
            regex(r"let\s+\w+"),
            regex(r"^PARSE"),
        ];
        let finders = ascii_finders(&matchers, case_sensitive);
        for text in texts {
            let lower = lowered(text, &matchers, case_sensitive);
            for (i, m) in matchers.iter().enumerate() {
                let out = term_absent(text, &lower, None, &matchers, i, case_sensitive);
                // Without the lowercase copy, on ASCII text: the same answer.
                if text.is_ascii() && (finders[i].is_some() || !reads_lower(m, case_sensitive)) {
                    assert_eq!(
                        term_absent(text, "", Some(&finders), &matchers, i, case_sensitive),
                        out,
                        "{text:?} (case sensitive: {case_sensitive})"
                    );
                    ascii_checked += 1;
                }
                // The lines, also as a piece of a file that starts at its line 7.
                for first_line in [0, 7] {
                    let lines_with = |lower: &str, finder| {
                        term_lines(
                            text,
                            lower,
                            finder,
                            &LineIndex::new(text),
                            first_line,
                            &[],
                            m,
                            case_sensitive,
                            &meter,
                        )
                        .expect("matching within the budget")
                        .lines
                    };
                    let lines = lines_with(&lower, None);
                    // The finder reading ASCII text itself finds the same lines as the lowercase copy.
                    if text.is_ascii() && finders[i].is_some() {
                        let found = lines_with("", finders[i].as_ref());
                        assert_eq!(
                            found, lines,
                            "{text:?}, term {i} (case sensitive: {case_sensitive})"
                        );
                        finder_checked += 1;
                    }
                    assert!(
                        !out || lines.is_empty(),
                        "{text:?} was skipped, yet lines {lines:?} match (case sensitive: {case_sensitive})"
                    );
                    assert!(lines.iter().all(|&l| l >= first_line), "{lines:?}");
                    if first_line == 0 {
                        skipped += usize::from(out);
                        matched += usize::from(!lines.is_empty());
                    }
                }
            }
        }
    }
    // Both outcomes happen, so the assertion above was put to the test.
    assert!(
        skipped > 20 && matched > 10 && ascii_checked > 20 && finder_checked > 20,
        "{skipped} skipped, {matched} matched, {ascii_checked} checked without the copy, {finder_checked} lines found by a finder"
    );
}

/// A file of `lines` numbered lines, cut into many chunks, and the 0-based first line of each of its chunks.
fn chunked_file(lines: usize, marks: &[(usize, &str)]) -> (String, Vec<usize>) {
    let mut text = String::new();
    for i in 0..lines {
        let filler = format!("let filler_{i} = compute({i}); // a plain line of the large file");
        match marks.iter().find(|(at, _)| *at == i) {
            // As long as the line it replaces, so that the chunk edges stay where they were.
            Some((_, mark)) => {
                assert!(
                    mark.len() <= filler.len(),
                    "{mark:?} is longer than {filler:?}"
                );
                text.push_str(&format!("{mark:<width$}\n", width = filler.len()));
            }
            None => text.push_str(&format!("{filler}\n")),
        }
    }
    let firsts = super::text::cut(&text)
        .iter()
        .map(|(first, _)| *first as usize)
        .collect();
    (text, firsts)
}

/// A hit in a later chunk of a large file has the file's line number, and its snippet reaches across the chunk's
/// edges into the neighbouring chunks; the ranked (identifier), streamed (literal, regex) and several-term paths
/// agree.
#[test]
fn hits_in_later_chunks_have_file_lines_and_context_across_chunk_edges() {
    // First a plan without marks, to learn where the chunks start; the marks are as long as a filler line, so they
    // do not move the edges.
    let (_, firsts) = chunked_file(3000, &[]);
    assert!(firsts.len() > 10, "{} chunks", firsts.len());
    let start = firsts[3];
    let end = firsts[7] - 1;
    let (text, again) = chunked_file(
        3000,
        &[
            (start, "let chunk_edge_start = compute(1); // a marked line"),
            (end, "let chunk_edge_end = compute(2); // a marked line"),
        ],
    );
    assert_eq!(again, firsts, "the marks moved the chunk edges");
    let lines: Vec<&str> = text.lines().collect();
    let repo = write_repo(&[
        ("big.rs", text.as_str()),
        ("small.rs", "fn chunk_edge_start() {}\n"),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let index = CodeIndex::open(dir.path()).expect("open");
    index
        .index_repo("c", repo.path(), &IndexOptions::default(), &|_| {})
        .expect("index");
    let context = |i: usize| lines[i - 1..=i + 1].join("\n");
    for query in [
        "\"chunk_edge_start = compute\"",
        "/^let chunk_edge_start\\b/",
        "chunk_edge_start path:big",
    ] {
        let hits = search_all(&index, query);
        assert_eq!(hits.len(), 1, "{query}: {hits:?}");
        assert_eq!(
            (hits[0].path.as_str(), hits[0].line),
            ("big.rs", start as u32 + 1),
            "{query}"
        );
        assert_eq!(hits[0].snippet, context(start), "{query}");
    }
    let hits = search_all(&index, "\"chunk_edge_end\"");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].line, end as u32 + 1);
    assert_eq!(hits[0].snippet, context(end));
    // Two terms four chunks apart: the file matches, with both lines.
    let both: Vec<u32> = search_all(&index, "\"chunk_edge_start\" \"chunk_edge_end\"")
        .iter()
        .map(|h| h.line)
        .collect();
    assert_eq!(both, vec![start as u32 + 1, end as u32 + 1]);
    // A term missing from the file rules it out, whichever chunk holds the other one.
    assert!(search_all(&index, "\"chunk_edge_start\" \"no_such_words_anywhere\"").is_empty());
    assert!(search_all(&index, "\"chunk_edge_end\" /compute\\(99999\\)/").is_empty());
    // A line that is in every chunk: one hit per chunk edge region, each with its own line.
    let plain = search_all(&index, "\"filler_2999 \"");
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].line, 3000);
    assert_eq!(plain[0].snippet, lines[2998..3000].join("\n"));
}

/// Two-term text queries find exactly what a naive scan finds: the lines where either term matches, in the files
/// where both do, whichever chunks of a large file they are in.
#[test]
fn two_term_hits_equal_naive_scan() {
    let (files, _repo, _dir, index) = index_own_sources("t");
    let per_file: Vec<Vec<&str>> = files
        .iter()
        .map(|(_, t)| t.lines().filter(|l| l.trim().len() > 4).collect())
        .collect();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut nonempty = 0;
    let needle = |rng: &mut XorShift, file: usize| -> String {
        let line: Vec<char> = per_file[file][rng.below(per_file[file].len())]
            .chars()
            .collect();
        let len = 3 + rng.below(8.min(line.len() - 2));
        let start = rng.below(line.len() - len + 1);
        line[start..start + len].iter().collect()
    };
    for round in 0..40 {
        let file = rng.below(files.len());
        let a = needle(&mut rng, file);
        // Half the time the second needle comes from the same file, so both often occur there.
        let other = if rng.below(2) == 0 {
            file
        } else {
            rng.below(files.len())
        };
        let b = needle(&mut rng, other);
        let (la, lb) = (lowercase(&a), lowercase(&b));
        let mut naive: Vec<String> = Vec::new();
        for (p, t) in &files {
            let lower: Vec<String> = t.lines().map(lowercase).collect();
            let has = |n: &str| lower.iter().any(|l| l.contains(n));
            if has(&la) && has(&lb) {
                for (i, l) in lower.iter().enumerate() {
                    if l.contains(&la) || l.contains(&lb) {
                        naive.push(format!("t:{p}:{}", i + 1));
                    }
                }
            }
        }
        naive.sort();
        nonempty += usize::from(!naive.is_empty());
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let query = format!("{} {}", quote(&a), quote(&b));
        assert_eq!(
            every_line(&index, &query),
            naive,
            "round {round}: {query:?}"
        );
    }
    assert!(nonempty > 10, "only {nonempty} rounds had hits");
}

/// An identifier with a text term: the identifier ranks files, the text term keeps only the files where it matches
/// somewhere (in any chunk), and the hits are the lines where either matches.
#[test]
fn an_identifier_with_a_text_term_keeps_only_files_where_both_match() {
    let (_, firsts) = chunked_file(3000, &[]);
    let far = firsts[6] + 3;
    let (big, _) = chunked_file(
        3000,
        &[
            (2, "fn alpha_mixed() { compute(0) }"),
            (far, "let s = \"needle in hay\"; // far"),
        ],
    );
    let repo = write_repo(&[
        ("a.rs", "fn alpha_mixed() {}\nlet s = \"needle in hay\";\n"),
        ("b.rs", "fn alpha_mixed() {}\n"),
        ("c.rs", "let s = \"needle in hay\";\n"),
        ("big.rs", big.as_str()),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let index = CodeIndex::open(dir.path()).expect("open");
    index
        .index_repo("m", repo.path(), &IndexOptions::default(), &|_| {})
        .expect("index");
    let lines = |query: &str| -> Vec<String> {
        let mut got: Vec<String> = search_all(&index, query)
            .iter()
            .filter(|h| h.matched != crate::index::LineMatch::Substring)
            .map(|h| format!("{}:{}", h.path, h.line))
            .collect();
        got.sort();
        got
    };
    let mut both = vec![
        "a.rs:1".to_string(),
        "a.rs:2".to_string(),
        format!("big.rs:{}", far + 1),
        "big.rs:3".to_string(),
    ];
    both.sort();
    assert_eq!(lines("alpha_mixed \"needle in hay\""), both);
    assert_eq!(lines("alpha_mixed /needle\\s+in\\s+hay/"), both);
    // A text term no file holds with the identifier: nothing, without reading every file of the identifier.
    assert!(lines("alpha_mixed \"needle in a haystack\"").is_empty());
    // A text term too short for trigrams narrows nothing and is still verified: b.rs has no "in".
    let short = lines("alpha_mixed \"in\"");
    assert!(short.contains(&"a.rs:2".to_string()), "{short:?}");
    assert!(!short.iter().any(|l| l.starts_with("b.rs")), "{short:?}");
}
