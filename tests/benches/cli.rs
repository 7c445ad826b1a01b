//! What the scanner's commands cost as whole processes: `dreamos index`, `dreamos search Q` and `dreamos repos`
//! against the release binary, with ripgrep over the same files, process to process, measured in the same run as
//! the baseline. The searches are measured both ways a tool answers: opening the index itself (`DREAMOS_TOOLS=local`)
//! and asking a swarm (`dreamos run`) running on the same data directory (`DREAMOS_TOOLS=swarm`).
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
//!
//! Every measured process starts as from a shell: by its absolute path (as a shell's table of programs finds it,
//! rather than an `execve` per directory of `PATH`), and without the directories cargo adds to `LD_LIBRARY_PATH` for
//! this bench (in its target directory, 16 of them here, and the toolchain's libraries), where the loader would look
//! for every shared library of every process first.

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
    let rg_version = shell(Command::new(program("rg")?)).arg("--version").output().map_err(|e| {
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
    let probe = shell(Command::new("true"));
    let library_path = probe
        .get_envs()
        .find(|(key, _)| *key == "LD_LIBRARY_PATH")
        .map_or_else(
            || format!("{:?} (as inherited)", std::env::var_os("LD_LIBRARY_PATH")),
            |(_, value)| value.map_or("unset".to_string(), |v| format!("{v:?}")),
        );
    println!("measured processes start by absolute path, with LD_LIBRARY_PATH {library_path}");
    let dreamos = |args: &[&str]| -> Command {
        let mut cmd = shell(Command::new(&bin));
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

    // The same tools answered by a swarm running on the data directory (`bot/src/served.rs`), beside the tools that
    // open the index themselves.
    let mut swarm = dreamos(&["run"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("dreamos run: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !via(dreamos(&["repos"]), "swarm")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        if Instant::now() > deadline {
            let _ = swarm.kill();
            return Err("the swarm did not answer `dreamos repos` within 120 s".to_string());
        }
        std::thread::yield_now();
    }
    let measured = measure(&dreamos, &corpus_dir, runs);
    // Closing the console's input stops the swarm.
    drop(swarm.stdin.take());
    let _ = swarm.wait();
    let m = measured?;

    println!(
        "whole-process latency over {runs} runs each, p50 / p99 in ms (dreamos search --limit {LIMIT} Q, opening the index itself (alone) or answered by a running swarm (served); rg --no-config -n -i [-F] --max-count 20 -- Q DIR):"
    );
    let line = |label: &str, alone: &[Duration], served: &[Duration], rg: &[Duration]| {
        println!(
            "  {label:<40} alone {:>6.2} / {:>6.2}   served {:>6.2} / {:>6.2}   rg {:>6.2} / {:>6.2}   {:>5.1}x / {:>5.1}x rg at p50",
            ms(pct(alone, 50)),
            ms(pct(alone, 99)),
            ms(pct(served, 50)),
            ms(pct(served, 99)),
            ms(pct(rg, 50)),
            ms(pct(rg, 99)),
            ratio(rg, alone),
            ratio(rg, served)
        );
    };
    for (i, (class, q, _, _)) in QUERIES.iter().enumerate() {
        line(
            &format!("{class:<10} {q}"),
            &m.alone[i],
            &m.served[i],
            &m.rg[i],
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
        line(
            &format!("{class:<10} all queries"),
            &pick(&m.alone),
            &pick(&m.served),
            &pick(&m.rg),
        );
    }
    let all = |v: &[Vec<Duration>]| -> Vec<Duration> { v.iter().flatten().copied().collect() };
    line("every search", &all(&m.alone), &all(&m.served), &all(&m.rg));
    println!(
        "  dreamos repos                            alone {:>6.2} / {:>6.2}   served {:>6.2} / {:>6.2}",
        ms(pct(&m.repos_alone, 50)),
        ms(pct(&m.repos_alone, 99)),
        ms(pct(&m.repos_served, 50)),
        ms(pct(&m.repos_served, 99))
    );
    println!(
        "  floor: spawning `true`                   {:>6.2} / {:>6.2}",
        ms(pct(&m.floor, 50)),
        ms(pct(&m.floor, 99))
    );
    Ok(())
}

/// `cmd` with `DREAMOS_TOOLS` set: `local` (open the index) or `swarm` (only the running swarm answers).
fn via(mut cmd: Command, how: &str) -> Command {
    cmd.env("DREAMOS_TOOLS", how);
    cmd
}

/// Latencies of every side, per query.
struct Measured {
    alone: Vec<Vec<Duration>>,
    served: Vec<Vec<Duration>>,
    rg: Vec<Vec<Duration>>,
    repos_alone: Vec<Duration>,
    repos_served: Vec<Duration>,
    floor: Vec<Duration>,
}

fn measure(dreamos: &dyn Fn(&[&str]) -> Command, corpus_dir: &Path, runs: usize) -> Res<Measured> {
    let (true_bin, rg_bin) = (program("true")?, program("rg")?);
    // Every command once before measuring, so every side runs with a warm page cache.
    for (_, q, pattern, regex) in QUERIES {
        let alone = run_to_end(&mut via(dreamos(&["search", "--limit", LIMIT, q]), "local"))?;
        let served = run_to_end(&mut via(dreamos(&["search", "--limit", LIMIT, q]), "swarm"))?;
        if alone.is_empty() {
            println!("  no hit for {q} (every query should have some)");
        }
        if alone != served {
            return Err(format!(
                "dreamos search {q}: the swarm's answer differs from the tool's own"
            ));
        }
        count_lines(rg(&rg_bin, corpus_dir, pattern, *regex))?;
    }
    // Interleaved, so that load from elsewhere on the machine falls on every side alike.
    let mut m = Measured {
        alone: vec![Vec::new(); QUERIES.len()],
        served: vec![Vec::new(); QUERIES.len()],
        rg: vec![Vec::new(); QUERIES.len()],
        repos_alone: Vec::new(),
        repos_served: Vec::new(),
        floor: Vec::new(),
    };
    for _ in 0..runs {
        for (i, (_, q, pattern, regex)) in QUERIES.iter().enumerate() {
            m.alone[i].push(time(via(
                dreamos(&["search", "--limit", LIMIT, q]),
                "local",
            ))?);
            m.served[i].push(time(via(
                dreamos(&["search", "--limit", LIMIT, q]),
                "swarm",
            ))?);
            m.rg[i].push(time(rg(&rg_bin, corpus_dir, pattern, *regex))?);
        }
        m.repos_alone.push(time(via(dreamos(&["repos"]), "local"))?);
        m.repos_served
            .push(time(via(dreamos(&["repos"]), "swarm"))?);
        m.floor.push(time(shell(Command::new(&true_bin)))?);
    }
    Ok(m)
}

/// The directory of repository `part` of `repos` (the corpus itself when there is one).
fn repo_root(corpus_dir: &Path, part: u64, repos: u64) -> PathBuf {
    if repos > 1 {
        corpus_dir.join(format!("part{part}"))
    } else {
        corpus_dir.to_path_buf()
    }
}

fn rg(rg_bin: &Path, dir: &Path, pattern: &str, regex: bool) -> Command {
    let mut cmd = shell(Command::new(rg_bin));
    cmd.args(["--no-config", "-n", "-i", "--max-count", "20"]);
    if !regex {
        cmd.arg("-F");
    }
    cmd.args(["--", pattern]).arg(dir);
    cmd
}

/// The absolute path of `name` in the first directory of `PATH` that has it.
fn program(name: &str) -> Res<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| format!("{name} is not in PATH"))
}

/// `cmd` with the environment a shell would give it: `LD_LIBRARY_PATH` without the directories cargo added for
/// this bench (under this executable's profile directory, and the toolchain's `rustlib` libraries).
fn shell(mut cmd: Command) -> Command {
    let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") else {
        return cmd;
    };
    // This executable is `<target>/<profile>/deps/cli-…`; cargo adds `<target>/<profile>`, its `deps` and the
    // `build/*/out` directories of the build scripts that link native libraries.
    let profile = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf));
    let toolchain = |dir: &Path| {
        dir.components().any(|c| c.as_os_str() == "rustlib") || dir.join("rustlib").is_dir()
    };
    let kept: Vec<PathBuf> = std::env::split_paths(&paths)
        .filter(|dir| !profile.as_ref().is_some_and(|p| dir.starts_with(p)) && !toolchain(dir))
        .collect();
    if kept.is_empty() {
        cmd.env_remove("LD_LIBRARY_PATH");
    } else if let Ok(joined) = std::env::join_paths(kept) {
        cmd.env("LD_LIBRARY_PATH", joined);
    }
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
