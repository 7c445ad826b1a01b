//! End-to-end: the scanner through the built binary — the console commands, the code skills, the CLI tools,
//! watch mode, and the bad inputs of indexing.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use dreamos_tests::{dreamos_command, run_dreamos, Console};
use serde_json::Value;

/// A small repository: Rust and Python files with definitions and imports between them.
fn fixture_repo(root: &Path) {
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(
        "src/lib.rs",
        "//! The crate.\nmod parser;\n\n/// Parses a config file.\npub fn load_config(path: &str) -> parser::Config {\n    parser::parse_config(path)\n}\n",
    );
    write(
        "src/parser.rs",
        "use crate::load_config;\n\npub struct Config {\n    pub name: String,\n}\n\npub fn parse_config(path: &str) -> Config {\n    Config { name: path.to_string() }\n}\n",
    );
    write(
        "tools/report.py",
        "import os\nfrom tools import util\n\nclass Reporter:\n    def render_report(self):\n        return os.getcwd()\n",
    );
    write("tools/util.py", "def helper():\n    return 42\n");
    write(
        "Cargo.toml",
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n",
    );
    write("tools/__init__.py", "");
}

fn allowed(dir: &Path) -> String {
    format!("[\"{}\"]", dir.display())
}

#[test]
fn console_commands_and_code_skills_answer_from_the_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("work/demo");
    fixture_repo(&repo);
    let roots = allowed(&dir.path().join("work"));
    let data = dir.path().join("data");
    let mut console = Console::start(&data, &[], &[("DREAMOS_SCANNER__ALLOWED_ROOTS", &roots)]);

    // /index is a task: it answers at once with the task, whose result is the report.
    let created = console.ok(&format!("/index {} --name demo", repo.display()));
    assert_eq!(created["action"], "index", "{created}");
    assert_eq!(created["task"]["skill"], "scan");
    let id = created["task"]["id"].as_u64().expect("task id");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let done = loop {
        let shown = console.ok(&format!("/task show {id}"));
        if shown["task"]["status"] == "done" {
            break shown["task"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the index task did not finish: {shown}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(done["result"]["report"]["files"], 6, "{done}");
    // --wait answers with the report itself (a second run: nothing changed).
    let again = console.ok(&format!("/index {} --name demo --wait", repo.display()));
    assert_eq!(again["unchanged"], 6, "{again}");
    let report = done["result"]["report"].clone();
    assert_eq!(report["repo"], "demo");
    assert_eq!(report["files"], 6);
    // load_config, Config, Config::name, parse_config, Reporter, Reporter::render_report, helper.
    assert_eq!(report["symbols"], 7, "{report}");

    let hits = console.ok("/search parse_config");
    let hits = hits["hits"].as_array().expect("hits");
    assert_eq!(
        hits[0]["path"], "src/parser.rs",
        "the definition ranks first: {hits:?}"
    );
    assert_eq!(hits[0]["kind"], "function");
    assert_eq!(hits[0]["line"], 7);
    for field in [
        "repo", "path", "line", "end_line", "lang", "snippet", "score",
    ] {
        assert!(hits[0].get(field).is_some(), "a hit lacks {field}");
    }
    let regex = console.ok("/search /fn \\w+_config/ lang:rust --limit 10");
    assert_eq!(regex["hits"].as_array().map(Vec::len), Some(2));
    let phrase = console.ok("/search \"os.getcwd()\"");
    assert_eq!(phrase["hits"][0]["path"], "tools/report.py");

    let symbols = console.ok("/symbol render_report");
    assert_eq!(symbols["symbols"][0]["kind"], "method");
    assert_eq!(symbols["symbols"][0]["container"], "Reporter");
    let fuzzy = console.ok("/symbol parse_confg");
    assert_eq!(fuzzy["symbols"][0]["matched"], "fuzzy");

    let outline = console.ok(&format!(
        "/outline {}",
        repo.join("src/parser.rs").display()
    ));
    assert_eq!(outline["repo"], "demo");
    let names: Vec<_> = outline["definitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .map(|d| d["name"].as_str().expect("name").to_string())
        .collect();
    assert!(names.contains(&"Config".to_string()) && names.contains(&"parse_config".to_string()));

    let deps = console.ok("/deps src/lib.rs --repo demo");
    assert_eq!(deps["imports"][0]["path"], "src/parser.rs");
    assert_eq!(
        deps["importers"][0]["path"], "src/parser.rs",
        "a cycle: parser uses crate::load_config"
    );
    let py = console.ok("/deps tools/report.py --repo demo");
    assert_eq!(py["imports"][0]["path"], "tools/util.py");
    assert_eq!(py["external"], serde_json::json!(["os"]));
    assert_eq!(console.ok("/repos")["repos"][0]["name"], "demo");

    // References: the definition first, then each use with the definition it sits in.
    let refs = console.ok("/refs parse_config");
    assert_eq!(refs["definitions"][0]["path"], "src/parser.rs", "{refs}");
    assert_eq!(refs["total"], 1, "{refs}");
    let call = &refs["uses"][0];
    assert_eq!(
        (
            &call["path"],
            &call["line"],
            &call["kind"],
            &call["within"]["name"]
        ),
        (
            &Value::from("src/lib.rs"),
            &Value::from(6),
            &Value::from("call"),
            &Value::from("load_config")
        ),
        "{refs}"
    );
    let types = console.ok("/refs Config --kind type");
    assert_eq!(types["total"], 3, "lib.rs:5, parser.rs:7 and 8: {types}");
    assert_eq!(types["calls"], 0, "{types}");
    // Impact: who uses parse_config (load_config), then who uses that (parser.rs imports it at its top level).
    let impact = console.ok("/impact parse_config");
    assert_eq!(impact["files"][0]["path"], "src/lib.rs", "{impact}");
    assert_eq!(impact["files"][0]["definitions"][0]["name"], "load_config");
    assert_eq!(impact["files"][1]["path"], "src/parser.rs", "{impact}");
    assert_eq!(impact["files"][1]["depth"], 2, "{impact}");
    let file = console.ok("/impact src/parser.rs --repo demo --depth 1");
    assert_eq!(file["target"]["type"], "file", "{file}");
    assert_eq!(file["files"][0]["path"], "src/lib.rs", "{file}");
    assert_eq!(
        file["files"][0]["uses"], 2,
        "parse_config and Config: {file}"
    );
    let sent = console.ok("/send agent-2 Config --kind refs --wait");
    assert_eq!(sent["reply"]["body"]["files"], 2, "{sent}");
    let sent = console.ok("/send agent-3 parse_config --kind impact --wait");
    assert_eq!(sent["reply"]["body"]["total_files"], 2, "{sent}");

    // The same through an agent's skill.
    let sent = console.ok("/send agent-2 load_config --kind search --wait");
    assert_eq!(sent["reply"]["body"]["hits"][0]["path"], "src/lib.rs");

    // Bad input: clear errors, nothing indexed.
    let missing = format!("/index {}", dir.path().join("work/missing").display());
    assert_eq!(console.refused(&missing).0, "invalid_argument");
    let cases: &[(&str, &str)] = &[
        ("/index ../../etc", "path_not_allowed"),
        ("/index /etc", "path_not_allowed"),
        // Outside the roots, a missing path gets the same answer: the error never says what exists.
        ("/index /nonexistent/dir", "path_not_allowed"),
        ("/search /unclosed", "invalid_query"),
        ("/search x lang:", "invalid_query"),
        ("/search x lang:cobol", "invalid_query"),
        ("/search x --limit 0", "invalid_argument"),
        ("/symbol x --kind gadget", "invalid_argument"),
        ("/outline src/nope.rs --repo demo", "unknown_file"),
        ("/deps src/lib.rs --repo nothere", "unknown_repo"),
        ("/deps src/lib.rs --repo demo --depth 0", "invalid_argument"),
        ("/refs nothing_like_it", "unknown_symbol"),
        ("/refs Config --kind gadget", "invalid_argument"),
        ("/refs Config --repo nothere", "unknown_repo"),
        ("/refs parser::Config", "invalid_query"),
        ("/refs Config --limit 0", "invalid_argument"),
        ("/impact parse_config --depth 0", "invalid_argument"),
        (
            "/impact parse_config --depth 99999999999",
            "invalid_argument",
        ),
        ("/impact src/nope.rs --repo demo", "unknown_file"),
        ("/impact nothing_like_it", "unknown_symbol"),
    ];
    for (line, kind) in cases {
        assert_eq!(&console.refused(line).0, kind, "{line}");
    }
    let reply = console.ok("/send agent-1 /unclosed --kind search --wait");
    assert_eq!(reply["reply"]["body"]["error"]["kind"], "invalid_query");
    assert_eq!(
        console.ok("/repos")["repos"].as_array().map(Vec::len),
        Some(1)
    );
    console.finish();

    // Only a captain indexes, by command or by message.
    let mut operator = Console::start(
        &data,
        &["--role", "operator"],
        &[("DREAMOS_SCANNER__ALLOWED_ROOTS", &roots)],
    );
    assert_eq!(
        operator.refused(&format!("/index {}", repo.display())).0,
        "forbidden"
    );
    assert_eq!(
        operator
            .refused(&format!("/send agent-1 {} --kind scan", repo.display()))
            .0,
        "forbidden"
    );
    assert_eq!(
        operator.ok("/symbol Config")["symbols"][0]["name"],
        "Config"
    );
    operator.finish();
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn cli_tools_index_search_and_list_with_json_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("demo");
    fixture_repo(&repo);
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    let repo_arg = repo.to_str().expect("utf-8");
    let run = |args: &[&str]| {
        let mut all = vec!["--data-dir", data];
        all.extend_from_slice(args);
        let (status, stdout, stderr) = run_dreamos(&all, &[], "");
        assert!(status.success(), "dreamos {args:?} failed: {stderr}");
        stdout
    };
    let report = json_lines(&run(&["index", repo_arg, "--json"]));
    assert_eq!(report[0]["files"], 6);
    assert_eq!(report[0]["added"], 6);
    // Incremental: nothing changed, nothing re-indexed.
    let again = json_lines(&run(&["index", repo_arg, "--json"]));
    assert_eq!(
        (again[0]["unchanged"].as_u64(), again[0]["changed"].as_u64()),
        (Some(6), Some(0))
    );
    let human = run(&["index", repo_arg]);
    assert!(human.starts_with("indexed demo: 6 files"), "{human}");

    let hits = json_lines(&run(&["search", "helper", "--json"]));
    assert_eq!(hits[0]["path"], "tools/util.py");
    assert_eq!(hits[0]["line"], 1);
    let hits = json_lines(&run(&[
        "search", "Config", "--lang", "rust", "--path", "src/*.rs", "--limit", "3", "--json",
    ]));
    assert!(!hits.is_empty() && hits.len() <= 3);
    assert!(hits.iter().all(|h| h["lang"] == "rust"));
    let symbols = json_lines(&run(&[
        "symbol",
        "load_config",
        "--kind",
        "function",
        "--json",
    ]));
    assert_eq!(symbols[0]["path"], "src/lib.rs");
    let outline = json_lines(&run(&[
        "outline",
        repo.join("src/lib.rs").to_str().expect("utf-8"),
        "--json",
    ]));
    assert_eq!(outline[0]["name"], "load_config");
    let deps = json_lines(&run(&["deps", "src/parser.rs", "--repo", "demo", "--json"]));
    assert!(deps
        .iter()
        .any(|d| d["direction"] == "imports" && d["target"] == "src/lib.rs"));
    let refs = json_lines(&run(&["refs", "Config", "--json"]));
    assert_eq!(refs[0]["role"], "definition", "{refs:?}");
    assert_eq!(refs[0]["path"], "src/parser.rs");
    assert!(
        refs.iter()
            .any(|r| r["role"] == "use" && r["path"] == "src/lib.rs" && r["line"] == 5),
        "{refs:?}"
    );
    let text = run(&["refs", "parse_config"]);
    assert!(
        text.contains("src/lib.rs:6  in function load_config")
            && text.contains(">     6     parser::parse_config(path)"),
        "{text}"
    );
    let impact = json_lines(&run(&[
        "impact",
        "src/parser.rs",
        "--repo",
        "demo",
        "--json",
    ]));
    assert_eq!(impact[0]["path"], "src/lib.rs", "{impact:?}");
    let (status, _, stderr) = run_dreamos(
        &["--data-dir", data, "impact", "x", "--depth", "0"],
        &[],
        "",
    );
    assert!(
        !status.success() && stderr.contains("must be a whole number between"),
        "{stderr}"
    );
    let (status, _, stderr) = run_dreamos(&["--data-dir", data, "refs", "Nope_nothing"], &[], "");
    assert!(
        !status.success() && stderr.contains("defines or uses"),
        "{stderr}"
    );
    let tags = run(&["symbols", "--repo", "demo"]);
    assert!(
        tags.lines()
            .any(|l| l.starts_with("Reporter\tdemo/tools/report.py\t4\tclass")),
        "{tags}"
    );
    let all = json_lines(&run(&["symbols", "--json"]));
    assert_eq!(all.len(), 7);

    let (status, _, stderr) = run_dreamos(&["--data-dir", data, "search", "/unclosed"], &[], "");
    assert!(!status.success());
    assert!(stderr.contains("unclosed regex"), "{stderr}");
}

#[test]
fn indexing_skips_hostile_files_by_reason_and_never_panics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("hostile");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::write(repo.join("ok.rs"), "fn fine() {}\n").expect("write");
    std::fs::write(repo.join("empty.rs"), "").expect("write");
    std::fs::write(repo.join("binary.rs"), b"fn x() {}\0\0\x01\x02").expect("write");
    std::fs::write(repo.join("latin1.py"), b"def caf\xe9():\n    pass\n").expect("write");
    std::fs::write(repo.join("huge.js"), vec![b'a'; 50 * 1024 * 1024]).expect("write");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&repo, repo.join("loop")).expect("symlink");
        std::os::unix::fs::symlink("/etc", repo.join("outside")).expect("symlink");
    }
    let data = dir.path().join("data");
    let (status, stdout, stderr) = run_dreamos(
        &[
            "--data-dir",
            data.to_str().expect("utf-8"),
            "index",
            repo.to_str().expect("utf-8"),
            "--json",
        ],
        &[],
        "",
    );
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report = &json_lines(&stdout)[0];
    assert_eq!(report["files"], 2, "ok.rs and empty.rs: {report}");
    let skipped = &report["skipped"];
    assert_eq!(skipped["binary"], 1, "{report}");
    assert_eq!(skipped["invalid_utf8"], 1, "{report}");
    assert_eq!(skipped["too_large"], 1, "{report}");
    #[cfg(unix)]
    {
        assert_eq!(skipped["symlink_loop"], 1, "{report}");
        assert_eq!(skipped["symlink_outside_root"], 1, "{report}");
    }
    // An empty repository is fine.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let (status, stdout, stderr) = run_dreamos(
        &[
            "--data-dir",
            data.to_str().expect("utf-8"),
            "index",
            empty.to_str().expect("utf-8"),
            "--json",
        ],
        &[],
        "",
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(json_lines(&stdout)[0]["files"], 0);
}

/// Starts `dreamos watch REPO --json` on `data`; its lines arrive through the channel, so every wait has a deadline.
fn start_watch(
    data: &Path,
    repo: &Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = dreamos_command(
        &[
            "--data-dir",
            data.to_str().expect("utf-8"),
            "watch",
            repo.to_str().expect("utf-8"),
            "--json",
        ],
        &[],
    )
    .stdin(Stdio::null())
    .spawn()
    .expect("start watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[test]
fn watch_makes_a_saved_file_searchable_within_a_second() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("live");
    fixture_repo(&repo);
    let data = dir.path().join("data");
    let (mut child, rx) = start_watch(&data, &repo);
    let mut next_line = |what: &str| -> Value {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            }
            Err(_) => {
                let _ = child.kill();
                let mut stderr = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
                }
                panic!("no {what} from dreamos watch; stderr: {stderr}")
            }
        }
    };
    let first = next_line("index report");
    assert_eq!(first["files"], 6, "the initial index report: {first}");

    let saved = Instant::now();
    std::fs::write(
        repo.join("src/fresh.rs"),
        "pub fn freshly_saved_function() {}\n",
    )
    .expect("write");
    // The watcher reports the update once it is committed and searchable; then a search must find it.
    let update = next_line("update");
    let elapsed = saved.elapsed();
    assert!(
        update["added"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p == "src/fresh.rs")),
        "{update}"
    );
    // Under a second on an idle machine (the search benchmark measures the same path at ~60 ms); the bound is
    // generous so that a loaded 2-core CI machine cannot fail the run, and the figure is reported.
    eprintln!("watch: the saved file was searchable {elapsed:?} after the write");
    assert!(
        elapsed < Duration::from_secs(10),
        "searchable after {elapsed:?}"
    );
    let (status, stdout, stderr) = run_dreamos(
        &[
            "--data-dir",
            data.to_str().expect("utf-8"),
            "search",
            "freshly_saved_function",
            "--json",
        ],
        &[],
        "",
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(json_lines(&stdout)[0]["path"], "src/fresh.rs");
    let _ = child.kill();
    let _ = child.wait();
}

/// The binary is linked statically at a fixed address (`.cargo/config.toml`): its ELF header says it is an
/// executable (`ET_EXEC`, not a position-independent `ET_DYN`) and it names no program interpreter (`PT_INTERP`), so
/// the kernel starts it without the dynamic loader. Every read-only tool's process is cheaper for it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_binary_starts_without_the_dynamic_loader() {
    use std::io::{Read, Seek, SeekFrom};
    const ET_EXEC: u16 = 2;
    const PT_INTERP: u32 = 3;
    // Only the ELF header and the program headers are read, not the whole binary (hundreds of MB).
    let mut file = std::fs::File::open(dreamos_tests::dreamos_bin()).expect("open the binary");
    let mut head = [0u8; 64];
    file.read_exact(&mut head).expect("read the ELF header");
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    assert_eq!(&head[..4], b"\x7fELF");
    assert_eq!(head[4], 2, "a 64-bit ELF file");
    assert_eq!(
        u16_at(&head, 16),
        ET_EXEC,
        "e_type: position-dependent executable"
    );
    let phoff = u64::from_le_bytes(head[0x20..0x28].try_into().expect("8 bytes"));
    let (phentsize, phnum) = (
        usize::from(u16_at(&head, 0x36)),
        usize::from(u16_at(&head, 0x38)),
    );
    let mut headers = vec![0u8; phentsize * phnum];
    file.seek(SeekFrom::Start(phoff))
        .expect("seek to the program headers");
    file.read_exact(&mut headers)
        .expect("read the program headers");
    let types: Vec<u32> = headers
        .chunks_exact(phentsize)
        .map(|h| u32::from_le_bytes(h[..4].try_into().expect("4 bytes")))
        .collect();
    assert!(!types.is_empty());
    assert!(
        !types.contains(&PT_INTERP),
        "program header types {types:?} name an interpreter"
    );
}

/// The size of the process's largest mapping, from /proc/PID/maps.
fn largest_mapping(pid: u32) -> u64 {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    maps.lines()
        .filter_map(|line| {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            Some(u64::from_str_radix(end, 16).ok()? - start)
        })
        .max()
        .unwrap_or(0)
}

/// The swarm allocates with mimalloc, the one-shot tools with the C library's allocator, whose start costs less
/// (see bot/src/allocator.rs). mimalloc's mark is the 1 GiB arena it reserves at its first allocation; glibc's
/// malloc reserves nothing of the kind.
#[test]
fn the_swarm_runs_on_mimalloc_and_the_tools_do_not() {
    const ARENA: u64 = 1 << 30;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = Console::start(&dir.path().join("swarm"), &[], &[]);
    console.ok("/status");
    let swarm = largest_mapping(console.pid());
    console.finish();
    assert!(
        swarm >= ARENA,
        "the swarm's largest mapping is {swarm} bytes"
    );

    let repo = dir.path().join("repo");
    fixture_repo(&repo);
    let (mut child, rx) = start_watch(&dir.path().join("tool"), &repo);
    // Once the first report is out, the tool has indexed the repository and allocated all it will.
    let first = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let tool = largest_mapping(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains("\"files\""), "first line: {first}");
    assert!(tool < ARENA, "the tool's largest mapping is {tool} bytes");
}

/// (exit code, stdout, stderr) of a read-only tool run in `cwd`, with `DREAMOS_TOOLS` set to `via`.
fn tool_in(cwd: &Path, data: &Path, via: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = dreamos_command(&[], &[("DREAMOS_TOOLS", via)]);
    command
        .current_dir(cwd)
        .arg("--data-dir")
        .arg(data)
        .args(args);
    let output = command.output().expect("run dreamos");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The read-only tools ask the swarm running on their data directory and print what they print alone; they see an
/// index run that finished before they asked; once the swarm is killed they answer alone again.
#[test]
fn the_swarm_answers_the_read_only_tools_as_they_answer_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("demo");
    fixture_repo(&repo);
    let data = dir.path().join("data");
    let (status, _, stderr) = run_dreamos(
        &[
            "--data-dir",
            data.to_str().expect("utf-8"),
            "index",
            repo.to_str().expect("utf-8"),
        ],
        &[],
        "",
    );
    assert!(status.success(), "{stderr}");
    // Each question with the directory it is asked in: file arguments are relative to the tool's directory.
    let questions: &[(&Path, &[&str])] = &[
        (dir.path(), &["search", "helper"]),
        (dir.path(), &["search", "Config", "--json", "--limit", "3"]),
        (dir.path(), &["search", "zzq_nothing_like_it"]),
        (dir.path(), &["search", "/unclosed"]),
        (dir.path(), &["search", "x", "--limit", "0"]),
        (dir.path(), &["symbol", "load_config"]),
        (dir.path(), &["symbol", "x", "--kind", "nonsense"]),
        (&repo, &["outline", "src/lib.rs"]),
        (
            dir.path(),
            &["outline", "src/lib.rs", "--repo", "demo", "--json"],
        ),
        (&repo, &["deps", "src/parser.rs"]),
        (dir.path(), &["refs", "parse_config"]),
        (dir.path(), &["refs", "Nope_nothing"]),
        (&repo, &["impact", "src/parser.rs", "--json"]),
        (dir.path(), &["impact", "x", "--depth", "0"]),
        (dir.path(), &["symbols"]),
        (dir.path(), &["repos", "--json"]),
    ];
    let ask = |via: &str| -> Vec<(Option<i32>, String, String)> {
        questions
            .iter()
            .map(|(cwd, args)| tool_in(cwd, &data, via, args))
            .collect()
    };
    let alone = ask("local");
    assert_eq!(alone[0].0, Some(0), "{:?}", alone[0]);
    assert!(alone[0].1.contains("tools/util.py:1"), "{:?}", alone[0]);
    assert_eq!(
        alone[2],
        (Some(0), String::new(), "no matches\n".to_string())
    );
    assert_eq!(alone[3].0, Some(1));
    assert!(alone[7].1.contains("load_config"), "{:?}", alone[7]);
    let (code, _, stderr) = tool_in(dir.path(), &data, "swarm", &["repos"]);
    assert!(
        code == Some(1) && stderr.contains("DREAMOS_TOOLS=swarm, but no swarm answered"),
        "{stderr}"
    );

    // The swarm says at debug level how each question came: every one of these is a command line the tool's
    // process sent before it started (`served::quick`), none a tool that read its line first.
    let mut console = Console::start(
        &data,
        &[],
        &[("RUST_LOG", "warn,dreamos_bot::served=debug")],
    );
    console.ok("/status");
    let served = ask("swarm");
    for ((question, alone), served) in questions.iter().zip(&alone).zip(&served) {
        assert_eq!(served, alone, "{question:?}: served differs from alone");
    }
    let logged = |what: &str| -> usize {
        std::fs::read_dir(data.join("logs"))
            .expect("log files")
            .flatten()
            .map(|entry| {
                std::fs::read_to_string(entry.path())
                    .unwrap_or_default()
                    .matches(what)
                    .count()
            })
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while logged("answering a tool's command line") < questions.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} questions came as command lines",
            logged("answering a tool's command line"),
            questions.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(logged("answering a tool's command line"), questions.len());
    assert_eq!(logged("answering a tool that read its command line"), 0);
    assert_eq!(ask("").len(), questions.len());
    let (code, _, stderr) = tool_in(dir.path(), &data, "sometimes", &["repos"]);
    assert!(
        code == Some(1) && stderr.contains("DREAMOS_TOOLS is \"sometimes\""),
        "{stderr}"
    );
    let (code, _, stderr) = tool_in(
        dir.path(),
        &data,
        "swarm",
        &["--config", "/nonexistent.toml", "repos"],
    );
    assert!(code == Some(1) && stderr.contains("--config"), "{stderr}");

    // An index run that finished before the question is in the answer.
    std::fs::write(repo.join("src/late.rs"), "pub fn arrived_late() {}\n").expect("write");
    let (code, _, stderr) = tool_in(
        dir.path(),
        &data,
        "local",
        &["index", repo.to_str().expect("utf-8")],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) = tool_in(dir.path(), &data, "swarm", &["symbol", "arrived_late"]);
    assert!(
        code == Some(0) && stdout.contains("src/late.rs:1"),
        "{stdout}{stderr}"
    );

    // Killed, the swarm leaves its socket behind; the tools answer alone, the same as before.
    console.kill();
    assert!(data.join("tools.sock").exists(), "the socket is gone");
    let (code, stdout, stderr) = tool_in(dir.path(), &data, "", &["search", "helper"]);
    assert_eq!(
        (code, &stdout, &stderr),
        (Some(0), &alone[0].1, &alone[0].2)
    );
    let (code, _, stderr) = tool_in(dir.path(), &data, "swarm", &["search", "helper"]);
    assert!(
        code == Some(1) && stderr.contains("no swarm answered"),
        "{stderr}"
    );
    // The next swarm takes the stale socket over.
    let mut console = Console::start(&data, &[], &[]);
    console.ok("/status");
    let (code, stdout, _) = tool_in(dir.path(), &data, "swarm", &["search", "helper"]);
    assert_eq!((code, stdout), (Some(0), alone[0].1.clone()));
    console.finish();
    assert!(
        !data.join("tools.sock").exists(),
        "a swarm that stopped left its socket"
    );
}
