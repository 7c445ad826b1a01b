//! Search benchmark: cold indexing, incremental updates and query latency of the code index, with ripgrep over
//! the same files measured in the same run as the baseline.
//!
//! Run with `cargo bench -p dreamos-scanner --bench search`. The corpus is a fixed, deterministic copy of real code
//! from this machine: crates from the cargo registry's sources (Rust plus the C they vendor), then Python's standard
//! library, in sorted order, until at least `DREAMOS_BENCH_LINES` (default 600,000) lines are copied into a temporary
//! directory; larger sizes go on with Go's standard library (`/usr/share/go-*/src`) and `/usr/include`. Everything is printed; nothing is written outside the temporary directory.
//!
//! `DREAMOS_BENCH_DIR=DIR` keeps the corpus and the index in `DIR` instead. When `DIR` already holds both (from an
//! earlier run of the same size), they are used as they are: the cold index is not measured again, so that queries
//! at 5 M lines can be measured again in a minute. When it holds the corpus alone, that corpus is indexed cold, so
//! that two builds can be compared on the same files.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dreamos_scanner::{
    CodeIndex, ImpactOptions, IndexOptions, IndexProgress, RefsOptions, SearchOptions,
};

#[path = "common/corpus.rs"]
mod corpus;
use corpus::{build_corpus, sorted_files};

/// Hits asked of each query, as a person or an agent would page results.
const LIMIT: usize = 20;

fn main() {
    if let Err(e) = run() {
        eprintln!("search benchmark failed: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, String>;

fn run() -> Res<()> {
    let rg_version = Command::new("rg")
        .arg("--version")
        .output()
        .map_err(|e| {
            format!("ripgrep (rg) is the baseline and is not installed ({e}); install it with `apt-get install -y ripgrep`")
        })?;
    let rg_version = String::from_utf8_lossy(&rg_version.stdout)
        .lines()
        .next()
        .unwrap_or("rg")
        .to_string();
    let want_lines: u64 = std::env::var("DREAMOS_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600_000);
    let tmp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let base = std::env::var_os("DREAMOS_BENCH_DIR")
        .map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let corpus = base.join("corpus");
    let index_dir = base.join("index");
    if corpus.is_dir() && index_dir.join("meta.json").is_file() {
        return queries(&corpus, &index_dir, &rg_version, true);
    }
    // A corpus kept from an earlier run (`DREAMOS_BENCH_DIR`) without its index is indexed again as it is, so that
    // two versions of the index can be compared on exactly the same files.
    let corpus::Copied {
        files,
        lines,
        bytes,
    } = if corpus.is_dir() {
        corpus::measure(&corpus)
    } else {
        build_corpus(&corpus, want_lines, 1)?
    };
    println!("== Scanner: index and search ==");
    println!(
        "corpus: {files} files, {lines} lines, {:.1} MB (cargo registry sources, then Python's stdlib; sorted, first {want_lines}+ lines)",
        bytes as f64 / 1e6
    );
    println!(
        "machine: {} cores; baseline: {rg_version}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Cold index: an empty index directory, every file walked, parsed (tree-sitter) and indexed, one commit.
    let index = CodeIndex::open(&index_dir).map_err(|e| e.to_string())?;
    let cpu_before = process_cpu_seconds();
    let t = Instant::now();
    let commit_started = std::sync::Mutex::new(None);
    let report = index
        .index_repo("corpus", &corpus, &IndexOptions::default(), &|p| {
            if p == IndexProgress::Committing {
                if let Ok(mut at) = commit_started.lock() {
                    *at = Some(Instant::now());
                }
            }
        })
        .map_err(|e| e.to_string())?;
    let cold = t.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu_before;
    let commit = commit_started
        .lock()
        .ok()
        .and_then(|at| *at)
        .map_or(0.0, |at| at.elapsed().as_secs_f64());
    println!(
        "cold index: {:.2} s (walk + parse + index {:.2} s, then commit {:.2} s), {:.2} MB/s, {:.0} files/s ({} files, {} symbols, skipped {:?}, extract failures {})",
        cold,
        cold - commit,
        commit,
        report.bytes as f64 / 1e6 / cold,
        report.files as f64 / cold,
        report.files,
        report.symbols,
        report.skipped,
        report.extract_failed
    );
    println!(
        "cold index CPU: {cpu:.2} s of process CPU time (all threads) = {:.2} MB per CPU-second; the machine's load average was {} (other work shares these cores)",
        report.bytes as f64 / 1e6 / cpu.max(1e-9),
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string())
    );
    println!(
        "peak RSS after the cold index: {:.0} MB (VmHWM of this process; the corpus is on disk, not in memory)",
        peak_rss_bytes() as f64 / 1e6
    );
    let index_bytes = dir_size(&index_dir);
    println!(
        "index size: {:.1} MB = {:.2}x the source ({:.1} MB)",
        index_bytes as f64 / 1e6,
        index_bytes as f64 / report.bytes as f64,
        report.bytes as f64 / 1e6
    );

    println!("index size by part: {}", size_by_extension(&index_dir));
    if std::env::var_os("DREAMOS_BENCH_ONLY_INDEX").is_some() {
        // For profiling the indexing path alone.
        return Ok(());
    }
    drop(index);
    queries(&corpus, &index_dir, &rg_version, false)
}

/// Everything measured on an index that exists: queries, references, impact, then updates (not on a `reused`
/// index, whose corpus they would change for the next run).
fn queries(corpus: &Path, index_dir: &Path, rg_version: &str, reused: bool) -> Res<()> {
    let index = CodeIndex::open(index_dir).map_err(|e| e.to_string())?;
    println!("index: {} ({rg_version} beside it)", index_dir.display());
    let (idents, texts) = pick_queries(corpus)?;
    println!(
        "queries: {} identifiers (half frequent, half rare, picked by frequency rank), {} substring/regex",
        idents.len(),
        texts.len()
    );

    // Warm both sides once so neither pays for a cold page cache, then measure.
    let our = |q: &str| -> Res<(Duration, usize)> {
        let t = Instant::now();
        let hits = index
            .search(
                q,
                &SearchOptions {
                    limit: LIMIT,
                    ..SearchOptions::default()
                },
            )
            .map_err(|e| format!("{q}: {e}"))?;
        Ok((t.elapsed(), hits.len()))
    };
    for (q, _) in idents.iter().chain(texts.iter()) {
        our(q)?;
    }
    let _ = rg_full(
        corpus,
        &RgQuery::Fixed("warmup_no_such_identifier_xyz".into()),
    )?;

    let mut ours_ident = Vec::new();
    let mut rg_ident = Vec::new();
    let mut rg_first_ident = Vec::new();
    let mut empty = 0;
    for (q, rgq) in &idents {
        let (d, n) = our(q)?;
        if n == 0 {
            empty += 1;
            println!("no hit for identifier query {q:?}");
        }
        ours_ident.push(d);
        rg_ident.push(rg_full(corpus, rgq)?);
        rg_first_ident.push(rg_first(corpus, rgq, LIMIT)?);
    }
    let mut ours_text = Vec::new();
    let mut rg_text = Vec::new();
    let mut rg_first_text = Vec::new();
    for (q, rgq) in &texts {
        let (d, n) = our(q)?;
        if n == 0 {
            empty += 1;
            println!("no hit for text query {q:?}");
        }
        ours_text.push(d);
        rg_text.push(rg_full(corpus, rgq)?);
        rg_first_text.push(rg_first(corpus, rgq, LIMIT)?);
    }
    println!(
        "queries with no hit: {empty} (every query is taken from the corpus, so this should be 0)"
    );
    let slowest = |queries: &[Pair], times: &[Duration]| {
        let mut v: Vec<(Duration, &str)> = times
            .iter()
            .copied()
            .zip(queries.iter().map(|(q, _)| q.as_str()))
            .collect();
        v.sort();
        v.iter()
            .rev()
            .take(3)
            .map(|(d, q)| format!("{q} {:.1} ms", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "slowest identifier queries: {}",
        slowest(&idents, &ours_ident)
    );
    println!(
        "slowest substring/regex queries: {}",
        slowest(&texts, &ours_text)
    );
    println!("latency (limit {LIMIT}), p50 / p99:");
    print_row("identifier  index", &ours_ident);
    print_row("identifier  rg (full scan)", &rg_ident);
    print_row("identifier  rg (first 20 lines)", &rg_first_ident);
    print_row("substr/regex index", &ours_text);
    print_row("substr/regex rg (full scan)", &rg_text);
    print_row("substr/regex rg (first 20 lines)", &rg_first_text);
    println!(
        "speed-up at p50: identifiers {:.0}x vs full rg scan, {:.0}x vs rg's first 20 lines; substring/regex {:.0}x / {:.0}x",
        ratio(&rg_ident, &ours_ident),
        ratio(&rg_first_ident, &ours_ident),
        ratio(&rg_text, &ours_text),
        ratio(&rg_first_text, &ours_text)
    );
    println!(
        "  rg runs as `rg --no-config -n -i [-F] --max-count 20 -- QUERY DIR` over the corpus directory (the same files,\n  no ignore files in it), on every core, with a warm page cache. 'full scan' waits for rg to finish: a ranked top 20\n  (definitions first) needs every match, which is what the index answers. 'first 20 lines' stops rg after 20 output\n  lines, the best case for an unranked grep. Identifier queries run in rg as case-insensitive fixed strings, a superset\n  of the index's identifier match."
    );

    // References: every use of a name (counted from postings, the first 20 listed with their snippets), beside
    // rg's word search for the same name, the closest a grep comes to "who uses this".
    let our_refs = |q: &str| -> Res<Option<(Duration, u64)>> {
        let t = Instant::now();
        match index.refs(
            q,
            &RefsOptions {
                limit: LIMIT,
                ..RefsOptions::default()
            },
        ) {
            Ok(r) => Ok(Some((t.elapsed(), r.total))),
            // A word of the corpus that is no name in code (only in comments or strings).
            Err(dreamos_scanner::Error::UnknownSymbol(_)) => Ok(None),
            Err(e) => Err(format!("refs {q}: {e}")),
        }
    };
    for (q, _) in &idents {
        our_refs(q)?;
    }
    let mut ours_refs = Vec::new();
    let mut refs_names: Vec<Pair> = Vec::new();
    let mut rg_words = Vec::new();
    let mut uses_total = 0u64;
    let mut no_refs = 0;
    for (q, _) in &idents {
        match our_refs(q)? {
            Some((d, total)) => {
                ours_refs.push(d);
                refs_names.push((q.clone(), RgQuery::Word(q.clone())));
                uses_total += total;
                rg_words.push(rg_full(corpus, &RgQuery::Word(q.clone()))?);
            }
            None => no_refs += 1,
        }
    }
    let mut ours_impact = Vec::new();
    let mut impact_files = 0u64;
    for (q, _) in idents.iter().step_by(4) {
        let t = Instant::now();
        match index.impact(
            q,
            &ImpactOptions {
                depth: 2,
                limit: LIMIT,
                ..ImpactOptions::default()
            },
        ) {
            Ok(i) => {
                ours_impact.push(t.elapsed());
                impact_files += i.total_files;
            }
            Err(dreamos_scanner::Error::UnknownSymbol(_)) => {}
            Err(e) => return Err(format!("impact {q}: {e}")),
        }
    }
    println!(
        "references: {} of the {} identifier queries are names used in code ({no_refs} only in comments or text), {uses_total} uses in all; impact (depth 2) of {} of them reached {impact_files} files in all",
        ours_refs.len(),
        idents.len(),
        ours_impact.len()
    );
    println!("slowest refs: {}", slowest(&refs_names, &ours_refs));
    print_row("refs        index", &ours_refs);
    print_row("refs        rg -w (full scan)", &rg_words);
    print_row("impact d=2  index", &ours_impact);
    println!(
        "speed-up at p50: refs {:.0}x vs rg -w",
        ratio(&rg_words, &ours_refs)
    );

    if reused {
        return Ok(());
    }
    // One-file update: edit a file, update, and wait until the new text is searchable.
    let target = first_rs_file(corpus).ok_or("the corpus has no .rs file")?;
    let marker = "zzq_bench_marker_identifier";
    let mut text = std::fs::read_to_string(&target).map_err(|e| e.to_string())?;
    text.push_str(&format!("\nfn {marker}() {{}}\n"));
    std::fs::write(&target, &text).map_err(|e| e.to_string())?;
    let t = Instant::now();
    index
        .update_files("corpus", std::slice::from_ref(&target))
        .map_err(|e| e.to_string())?;
    let searchable = wait_searchable(&index, marker)?;
    let watch_path = t.elapsed();
    println!(
        "one-file update (watch path, update_files + commit + reload) until searchable: {:.1} ms (search saw it {})",
        watch_path.as_secs_f64() * 1e3,
        if searchable { "at once" } else { "only after polling" }
    );
    let marker2 = "zzq_bench_marker_second";
    text.push_str(&format!("\nfn {marker2}() {{}}\n"));
    std::fs::write(&target, &text).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let rerun = index
        .index_repo("corpus", corpus, &IndexOptions::default(), &|_| {})
        .map_err(|e| e.to_string())?;
    wait_searchable(&index, marker2)?;
    println!(
        "one-file update (full incremental run: walk + hash {} files, re-index {}) until searchable: {:.1} ms",
        rerun.files,
        rerun.changed + rerun.added,
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// Megabytes per kind of index file (`store`: stored contents; `idx`: postings; `term`: term dictionaries; ...).
fn size_by_extension(dir: &Path) -> String {
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            let ext = path
                .extension()
                .map_or("other".to_string(), |x| x.to_string_lossy().to_string());
            *sizes.entry(ext).or_default() += e.metadata().map_or(0, |m| m.len());
        }
    }
    sizes
        .iter()
        .map(|(ext, n)| format!("{ext} {:.1} MB", *n as f64 / 1e6))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most resident memory this process has had, from /proc (0 where it is not available).
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// User plus system CPU time of this process so far, from /proc (0 where it is not available).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11usize, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // The kernel reports in clock ticks; USER_HZ is 100 on every Linux this runs on.
    ticks / 100.0
}

fn ratio(base: &[Duration], ours: &[Duration]) -> f64 {
    pct(base, 50).as_secs_f64() / pct(ours, 50).as_secs_f64().max(1e-9)
}

fn pct(values: &[Duration], p: usize) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let i = ((v.len() - 1) * p + 50) / 100;
    v[i.min(v.len() - 1)]
}

fn print_row(label: &str, values: &[Duration]) {
    println!(
        "  {label:<34} p50 {:>9.3} ms   p99 {:>9.3} ms",
        pct(values, 50).as_secs_f64() * 1e3,
        pct(values, 99).as_secs_f64() * 1e3
    );
}

/// Polls the index until `marker` is found, for at most a second.
fn wait_searchable(index: &CodeIndex, marker: &str) -> Res<bool> {
    let start = Instant::now();
    let mut first = true;
    loop {
        let hits = index
            .search(marker, &SearchOptions::default())
            .map_err(|e| e.to_string())?;
        if !hits.is_empty() {
            return Ok(first);
        }
        first = false;
        if start.elapsed() > Duration::from_secs(5) {
            return Err(format!("{marker} not searchable 5 s after the update"));
        }
        std::thread::yield_now();
    }
}

/// A query in the index's language, and the same query for ripgrep.
type Pair = (String, RgQuery);

enum RgQuery {
    Fixed(String),
    Regex(String),
    /// A fixed string matched as a whole word (`-w`).
    Word(String),
}

fn rg_command(dir: &Path, q: &RgQuery) -> Command {
    let mut cmd = Command::new("rg");
    cmd.args(["--no-config", "-n", "-i", "--max-count", "20"]);
    match q {
        RgQuery::Fixed(s) => cmd.args(["-F", "--", s]),
        RgQuery::Regex(s) => cmd.args(["--", s]),
        RgQuery::Word(s) => cmd.args(["-w", "-F", "--", s]),
    };
    cmd.arg(dir).stdout(Stdio::piped()).stderr(Stdio::null());
    cmd
}

/// Time for rg to print every match (it has to read every file).
fn rg_full(dir: &Path, q: &RgQuery) -> Res<Duration> {
    let t = Instant::now();
    let mut child = rg_command(dir, q).spawn().map_err(|e| format!("rg: {e}"))?;
    let mut sink = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut sink)
            .map_err(|e| format!("rg output: {e}"))?;
    }
    child.wait().map_err(|e| format!("rg: {e}"))?;
    Ok(t.elapsed())
}

/// Time for rg to print its first `n` lines (or finish, when it has fewer).
fn rg_first(dir: &Path, q: &RgQuery, n: usize) -> Res<Duration> {
    let t = Instant::now();
    let mut child = rg_command(dir, q).spawn().map_err(|e| format!("rg: {e}"))?;
    if let Some(out) = child.stdout.take() {
        let mut reader = BufReader::new(out);
        let mut line = Vec::new();
        for _ in 0..n {
            line.clear();
            if reader
                .read_until(b'\n', &mut line)
                .map_err(|e| e.to_string())?
                == 0
            {
                break;
            }
        }
    }
    let elapsed = t.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    Ok(elapsed)
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn first_rs_file(dir: &Path) -> Option<PathBuf> {
    let mut list = Vec::new();
    sorted_files(dir, &mut list);
    list.into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "rs"))
}

/// Picks the queries deterministically from the corpus: identifiers by frequency rank (frequent ones from the top
/// of the list, rare ones seen 2 to 5 times), and literal snippets and regexes from fixed positions.
fn pick_queries(dir: &Path) -> Res<(Vec<Pair>, Vec<Pair>)> {
    let mut list = Vec::new();
    sorted_files(dir, &mut list);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut texts_src: Vec<String> = Vec::new();
    for (i, path) in list.iter().enumerate() {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let mut word = String::new();
        for c in text.chars().chain(std::iter::once(' ')) {
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
            } else {
                if word.len() >= 4 && word.is_ascii() && !word.as_bytes()[0].is_ascii_digit() {
                    *counts.entry(std::mem::take(&mut word)).or_default() += 1;
                }
                word.clear();
            }
        }
        if i % 97 == 0 {
            // A line with some punctuation, from a fixed place in every 97th file, for the literal queries.
            if let Some(line) = text
                .lines()
                .filter(|l| {
                    let t = l.trim();
                    t.len() >= 16
                        && t.is_ascii()
                        && t.contains(['(', '.', ':', '='])
                        && !t.contains(['"', '\\', '/'])
                })
                .nth(3)
            {
                let t = line.trim();
                texts_src.push(t[..t.len().min(14)].trim().to_string());
            }
        }
    }
    let mut by_freq: Vec<(u64, String)> = counts.into_iter().map(|(w, n)| (n, w)).collect();
    by_freq.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let frequent: Vec<&String> = by_freq
        .iter()
        .take(600)
        .map(|(_, w)| w)
        .step_by(10)
        .collect();
    let rare_all: Vec<&String> = by_freq
        .iter()
        .filter(|(n, _)| (2..=5).contains(n))
        .map(|(_, w)| w)
        .collect();
    let step = (rare_all.len() / 60).max(1);
    let rare: Vec<&String> = rare_all.into_iter().step_by(step).take(60).collect();
    let idents: Vec<Pair> = frequent
        .into_iter()
        .chain(rare)
        .map(|w| (w.clone(), RgQuery::Fixed(w.clone())))
        .collect();
    let mut texts: Vec<Pair> = texts_src
        .into_iter()
        .filter(|t| t.len() >= 6)
        .take(16)
        .map(|t| (format!("\"{t}\""), RgQuery::Fixed(t)))
        .collect();
    for re in [
        r"fn\s+new\s*\(",
        r"impl\s+\w+\s+for\s+Vec",
        r"#include\s+<std\w+\.h>",
        r"def\s+test_\w+\(self",
        r"unsafe\s*\{",
        r"Result<\w+,\s*\w+Error>",
        r"raise\s+ValueError\(",
        r"pub\s+struct\s+\w+Builder",
    ] {
        texts.push((format!("/{re}/"), RgQuery::Regex(re.to_string())));
    }
    Ok((idents, texts))
}
