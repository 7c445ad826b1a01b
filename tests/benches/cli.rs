//! What the scanner's commands cost as whole processes: `dreamos index`, `dreamos search Q` and `dreamos repos`
//! against the release binary, with ripgrep over the same files, process to process, measured in the same run as
//! the baseline.
//!
//! ```text
//! cargo bench -p dreamos-tests --bench cli
//! ```
//!
//! Environment: `DREAMOS_BENCH_LINES` (default 1,000,000 lines of corpus), `DREAMOS_BENCH_REPOS` (default 7: the
//! corpus is indexed as that many repositories into one data directory), `DREAMOS_BENCH_RUNS` (default 50 runs of
//! each command), `DREAMOS_BENCH_BIN` (another `dreamos` binary to measure, such as an older build; default the
//! workspace's, built by [`dreamos_tests::dreamos_bin`]), `DREAMOS_BENCH_KEEP=1` (keep the corpus and the data
//! directory afterwards, and say where they are, to time single commands on them). The corpus is the search bench's (real code from the
//! cargo registry and Python's standard library, `scanner/benches/common/corpus.rs`). Needs `rg`
//! (`apt-get install -y ripgrep`). Nothing is written outside a temporary directory.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[path = "../../scanner/benches/common/corpus.rs"]
mod corpus;

/// Hits asked of each search, as `dreamos search` shows by default.
const LIMIT: &str = "20";

/// The queries: (class, dreamos query, ripgrep pattern, ripgrep takes it as a regex).
const QUERIES: &[(&str, &str, &str, bool)] = &[
    ("identifier", "HashMap", "HashMap", false),
    ("identifier", "from_utf8", "from_utf8", false),
    ("identifier", "deserialize_any", "deserialize_any", false),
    ("plain word", "buffer", "buffer", false),
    ("plain word", "timeout", "timeout", false),
    ("plain word", "version", "version", false),
    ("regex", r"/fn\s+new\s*\(/", r"fn\s+new\s*\(", true),
    (
        "regex",
        r"/raise\s+ValueError\(/",
        r"raise\s+ValueError\(",
        true,
    ),
    (
        "regex",
        r"/impl\s+\w+\s+for\s+Vec/",
        r"impl\s+\w+\s+for\s+Vec",
        true,
    ),
];

type Res<T> = Result<T, String>;

fn main() {
    if let Err(e) = run() {
        eprintln!("cli benchmark failed: {e}");
        std::process::exit(1);
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run() -> Res<()> {
    let rg_version = Command::new("rg").arg("--version").output().map_err(|e| {
        format!("ripgrep (rg) is the baseline and is not installed ({e}); install it with `apt-get install -y ripgrep`")
    })?;
    let rg_version = String::from_utf8_lossy(&rg_version.stdout)
        .lines()
        .next()
        .unwrap_or("rg")
        .to_string();
    let want_lines = env_number("DREAMOS_BENCH_LINES", 1_000_000);
    let repos = env_number("DREAMOS_BENCH_REPOS", 7).max(1);
    let runs = env_number("DREAMOS_BENCH_RUNS", 50).max(1) as usize;
    let bin = match std::env::var_os("DREAMOS_BENCH_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => dreamos_tests::dreamos_bin().to_path_buf(),
    };
    let tmp = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let (base, _tmp) = if std::env::var_os("DREAMOS_BENCH_KEEP").is_some() {
        let base = tmp.keep();
        println!(
            "keeping the corpus and the data directory in {}",
            base.display()
        );
        (base, None)
    } else {
        (tmp.path().to_path_buf(), Some(tmp))
    };
    let corpus_dir = base.join("corpus");
    let copied = corpus::build_corpus(&corpus_dir, want_lines, repos)?;
    let data = base.join("data");
    println!("== Scanner: whole processes (dreamos vs rg) ==");
    println!(
        "corpus: {} files, {} lines, {:.1} MB in {repos} repositories (cargo registry sources, then Python's stdlib)",
        copied.files,
        copied.lines,
        copied.bytes as f64 / 1e6
    );
    println!(
        "binary: {}; baseline: {rg_version}; machine: {} cores, load average {}",
        bin.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let dreamos = |args: &[&str]| -> Command {
        let mut cmd = Command::new(&bin);
        cmd.arg("--data-dir").arg(&data).args(args);
        // No config/local.toml and no DREAMOS_ variables of the caller: the defaults, as on a fresh machine.
        cmd.current_dir(&base);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DREAMOS_") {
                cmd.env_remove(key);
            }
        }
        cmd
    };

    // Index every repository, one process each, as a person would.
    let mut total = Duration::ZERO;
    for part in 1..=repos {
        let root = repo_root(&corpus_dir, part, repos);
        let name = format!("part{part}");
        let t = Instant::now();
        let out = dreamos(&["index", "--json", "--name", &name])
            .arg(&root)
            .output()
            .map_err(|e| format!("dreamos index: {e}"))?;
        let took = t.elapsed();
        if !out.status.success() {
            return Err(format!(
                "dreamos index {} failed: {}",
                root.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        total += took;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("dreamos index --json printed no JSON: {e}"))?;
        println!(
            "  index {name}: {:.2} s as a process ({} files, {} lines; the run itself reports {:.2} s)",
            took.as_secs_f64(),
            report["files"],
            report["lines"],
            report["seconds"].as_f64().unwrap_or(0.0)
        );
    }
    let index_dir = data.join("index");
    println!(
        "index: all {repos} repositories in {:.2} s; {} segments, {} files, {:.1} MB",
        total.as_secs_f64(),
        segments(&index_dir)?,
        std::fs::read_dir(&index_dir).map_or(0, |d| d.count()),
        dir_bytes(&index_dir) as f64 / 1e6
    );
    // A second run of one repository with nothing changed: the cost of an incremental run that finds no work.
    let name = format!("part{repos}");
    let t = Instant::now();
    let status = dreamos(&["index", "--json", "--name", &name])
        .arg(repo_root(&corpus_dir, repos, repos))
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("dreamos index: {e}"))?;
    if !status.success() {
        return Err("the unchanged re-index failed".to_string());
    }
    println!(
        "index {name} again, nothing changed: {:.0} ms as a process; then {} segments",
        t.elapsed().as_secs_f64() * 1e3,
        segments(&index_dir)?
    );

    // Every command once before measuring, so both sides run with a warm page cache.
    for (_, q, pattern, regex) in QUERIES {
        let hits = count_lines(dreamos(&["search", "--limit", LIMIT, q]))?;
        if hits == 0 {
            println!("  no hit for {q} (every query should have some)");
        }
        count_lines(rg(&corpus_dir, pattern, *regex))?;
    }
    count_lines(dreamos(&["repos"]))?;

    // Interleaved, so that load from elsewhere on the machine falls on both sides alike.
    let mut ours: Vec<Vec<Duration>> = vec![Vec::new(); QUERIES.len()];
    let mut theirs: Vec<Vec<Duration>> = vec![Vec::new(); QUERIES.len()];
    let mut listing = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..runs {
        for (i, (_, q, pattern, regex)) in QUERIES.iter().enumerate() {
            ours[i].push(time(dreamos(&["search", "--limit", LIMIT, q]))?);
            theirs[i].push(time(rg(&corpus_dir, pattern, *regex))?);
        }
        listing.push(time(dreamos(&["repos"]))?);
        floor.push(time(Command::new("true"))?);
    }
    println!(
        "whole-process latency over {runs} runs each, p50 / p99 (dreamos search --limit {LIMIT} Q; rg --no-config -n -i [-F] --max-count 20 -- Q DIR):"
    );
    for (i, (class, q, _, _)) in QUERIES.iter().enumerate() {
        println!(
            "  {class:<10} {q:<28} dreamos {:>7.2} / {:>7.2} ms   rg {:>7.2} / {:>7.2} ms   {:>5.1}x at p50",
            ms(pct(&ours[i], 50)),
            ms(pct(&ours[i], 99)),
            ms(pct(&theirs[i], 50)),
            ms(pct(&theirs[i], 99)),
            ratio(&theirs[i], &ours[i])
        );
    }
    for class in ["identifier", "plain word", "regex"] {
        let pick = |v: &[Vec<Duration>]| -> Vec<Duration> {
            QUERIES
                .iter()
                .zip(v)
                .filter(|((c, _, _, _), _)| *c == class)
                .flat_map(|(_, d)| d.iter().copied())
                .collect()
        };
        let (o, t) = (pick(&ours), pick(&theirs));
        println!(
            "  {class:<10} all queries                  dreamos {:>7.2} / {:>7.2} ms   rg {:>7.2} / {:>7.2} ms   {:>5.1}x at p50",
            ms(pct(&o, 50)),
            ms(pct(&o, 99)),
            ms(pct(&t, 50)),
            ms(pct(&t, 99)),
            ratio(&t, &o)
        );
    }
    let all_ours: Vec<Duration> = ours.iter().flatten().copied().collect();
    let all_theirs: Vec<Duration> = theirs.iter().flatten().copied().collect();
    println!(
        "  every search                            dreamos {:>7.2} / {:>7.2} ms   rg {:>7.2} / {:>7.2} ms   {:>5.1}x at p50",
        ms(pct(&all_ours, 50)),
        ms(pct(&all_ours, 99)),
        ms(pct(&all_theirs, 50)),
        ms(pct(&all_theirs, 99)),
        ratio(&all_theirs, &all_ours)
    );
    println!(
        "  dreamos repos                           {:>7.2} / {:>7.2} ms",
        ms(pct(&listing, 50)),
        ms(pct(&listing, 99))
    );
    println!(
        "  floor: spawning `true`                  {:>7.2} / {:>7.2} ms",
        ms(pct(&floor, 50)),
        ms(pct(&floor, 99))
    );
    Ok(())
}

/// The directory of repository `part` of `repos` (the corpus itself when there is one).
fn repo_root(corpus_dir: &Path, part: u64, repos: u64) -> PathBuf {
    if repos > 1 {
        corpus_dir.join(format!("part{part}"))
    } else {
        corpus_dir.to_path_buf()
    }
}

fn rg(dir: &Path, pattern: &str, regex: bool) -> Command {
    let mut cmd = Command::new("rg");
    cmd.args(["--no-config", "-n", "-i", "--max-count", "20"]);
    if !regex {
        cmd.arg("-F");
    }
    cmd.args(["--", pattern]).arg(dir);
    cmd
}

/// Runs `cmd` to its end, reading all it prints, and returns how long that took.
fn time(mut cmd: Command) -> Res<Duration> {
    let t = Instant::now();
    run_to_end(&mut cmd)?;
    Ok(t.elapsed())
}

/// Runs `cmd` to its end and counts the lines it printed.
fn count_lines(mut cmd: Command) -> Res<usize> {
    let out = run_to_end(&mut cmd)?;
    Ok(out.iter().filter(|&&b| b == b'\n').count())
}

fn run_to_end(cmd: &mut Command) -> Res<Vec<u8>> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_end(&mut out)
            .map_err(|e| format!("{cmd:?}: {e}"))?;
    }
    let status = child.wait().map_err(|e| format!("{cmd:?}: {e}"))?;
    // rg exits 1 when nothing matched; dreamos and true exit 0.
    if !status.success() && status.code() != Some(1) {
        return Err(format!("{cmd:?} failed: {status}"));
    }
    Ok(out)
}

/// The number of segments the index's meta.json lists.
fn segments(index_dir: &Path) -> Res<usize> {
    let text = std::fs::read_to_string(index_dir.join("meta.json"))
        .map_err(|e| format!("reading meta.json: {e}"))?;
    let meta: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("meta.json: {e}"))?;
    Ok(meta["segments"].as_array().map_or(0, Vec::len))
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
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

fn ratio(base: &[Duration], ours: &[Duration]) -> f64 {
    pct(base, 50).as_secs_f64() / pct(ours, 50).as_secs_f64().max(1e-9)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
