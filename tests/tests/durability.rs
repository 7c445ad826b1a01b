//! "Accepted" means on stable storage. Under `strace`, the `dreamos` binary must write a record to its file (a
//! message to the log's segment file `data/log/….seg`, a memory entry to sled's data file `data/db/db`), then
//! fdatasync (or fsync) that file, and only then print the acceptance. With `store.sync = "os"` the same trace
//! shows no fdatasync in between: the test tells the two apart, so it fails if the sync goes missing.
//!
//! Needs `strace` (`apt-get install -y strace`; `.ci/run` installs it). Without it the test fails under CI
//! (`DREAMOS_CI=1`) and says it did not run elsewhere.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use dreamos_tests::dreamos_bin;

/// The trace of one `dreamos run --json` session that sends one marked message.
struct Trace {
    lines: Vec<String>,
    /// The command whose answer is looked for.
    command: String,
}

/// A syscall on the file that holds the record, by where it completed in the trace.
#[derive(Debug)]
struct Call {
    name: String,
    completed_at: usize,
    text: String,
}

fn strace() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("strace"))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("DREAMOS_CI").is_none(),
            "strace is required under CI: apt-get install -y strace"
        );
        eprintln!("NOT RUN: the durability trace needs strace (apt-get install -y strace)");
    }
    found
}

fn trace_session(strace: &Path, sync: &str, marker: &str) -> Trace {
    trace_line(strace, sync, &format!("/send agent-1 {marker}"), "send")
}

/// The trace of a session that runs one command line, whose answer is the one for `command`.
fn trace_line(strace: &Path, sync: &str, line: &str, command: &str) -> Trace {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let out = dir.path().join("trace.txt");
    let mut child = Command::new(strace)
        .args(["-f", "-y", "-qq", "-s", "262144", "-e"])
        .arg("trace=pwrite64,pwritev,pwritev2,write,writev,fdatasync,fsync,sync_file_range")
        .arg("-o")
        .arg(&out)
        .arg(dreamos_bin())
        .args(["run", "--json", "--data-dir"])
        .arg(&data)
        .env_remove("RUST_LOG")
        .env("DREAMOS_STORE__SYNC", sync)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strace");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{line}\n").as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("strace output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("\"ok\":true"),
        "dreamos under strace failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("read trace");
    Trace {
        lines: text.lines().map(str::to_string).collect(),
        command: command.to_string(),
    }
}

impl Trace {
    /// The file the record holding `marker` was written to: the path `strace -y` shows for the descriptor of the
    /// first write whose data holds the marker, among files whose path ends in `suffix` (the command line may
    /// also reach other files, such as the audit log in sled).
    fn record_file(&self, marker: &str, suffix: &str) -> String {
        self.lines
            .iter()
            .find_map(|line| {
                let rest = line.split_once(' ')?.1.trim_start();
                let (name, args) = rest.split_once('(')?;
                if !name.contains("write") || args.starts_with("1<") || !args.contains(marker) {
                    return None;
                }
                let path = args.split_once('<')?.1.split_once('>')?.0;
                path.ends_with(suffix).then(|| path.to_string())
            })
            .unwrap_or_else(|| {
                self.fail(&format!(
                    "no write of `{marker}` to a file ending in {suffix}"
                ))
            })
    }

    /// Calls on `file`, with the line where each completed. A call split by another thread's
    /// (`<unfinished ...>` … `<... name resumed>`) completes at its resumed line.
    fn file_calls(&self, file: &str) -> Vec<Call> {
        let fd_suffix = format!("<{file}>");
        let mut calls = Vec::new();
        let mut unfinished: HashMap<String, (String, String)> = HashMap::new();
        for (i, line) in self.lines.iter().enumerate() {
            let Some((pid, rest)) = line.split_once(' ') else {
                continue;
            };
            let rest = rest.trim_start();
            if let Some(resumed) = rest.strip_prefix("<... ") {
                if let Some((name, text)) = unfinished.remove(pid) {
                    if resumed.starts_with(&name) {
                        calls.push(Call {
                            name,
                            completed_at: i,
                            text: format!("{text} {resumed}"),
                        });
                    }
                }
                continue;
            }
            let Some((name, args)) = rest.split_once('(') else {
                continue;
            };
            // The first argument, the descriptor with its path: `16</…/0000000000000000.seg>`.
            let on_file = args
                .split_once('>')
                .is_some_and(|(fd, _)| format!("{fd}>").ends_with(&fd_suffix));
            if !on_file {
                continue;
            }
            if rest.ends_with("<unfinished ...>") {
                unfinished.insert(pid.to_string(), (name.to_string(), rest.to_string()));
            } else {
                calls.push(Call {
                    name: name.to_string(),
                    completed_at: i,
                    text: rest.to_string(),
                });
            }
        }
        calls
    }

    /// The line where the command's answer was written to stdout.
    fn answer_line(&self) -> usize {
        let needle = format!(r#"\"command\":\"{}\""#, self.command);
        self.lines
            .iter()
            .position(|l| {
                let rest = l.split_once(' ').map_or("", |(_, r)| r).trim_start();
                (rest.starts_with("write(1<") || rest.starts_with("writev(1<"))
                    && rest.contains(&needle)
            })
            .unwrap_or_else(|| {
                self.fail(&format!(
                    "no write of the /{} answer to stdout",
                    self.command
                ))
            })
    }

    /// The line where the record holding `marker` was written to its file.
    fn record_written(&self, calls: &[Call], marker: &str) -> usize {
        calls
            .iter()
            .find(|c| c.name.contains("write") && c.text.contains(marker))
            .map(|c| c.completed_at)
            .unwrap_or_else(|| {
                self.fail(&format!("no write of `{marker}` in the calls on its file"))
            })
    }

    fn fail(&self, why: &str) -> ! {
        let start = self.lines.len().saturating_sub(200);
        panic!(
            "{why}\n--- the trace's last {} lines\n{}",
            self.lines.len() - start,
            self.lines[start..]
                .iter()
                .map(|l| l.chars().take(300).collect::<String>())
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

/// Successful fdatasync or fsync calls on the record's file that completed strictly between two trace lines.
fn syncs_between(calls: &[Call], from: usize, to: usize) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| {
            matches!(c.name.as_str(), "fdatasync" | "fsync")
                && (from + 1..to).contains(&c.completed_at)
                && c.text.trim_end().ends_with("= 0")
        })
        .collect()
}

/// Fails unless the trace wrote `marker` to a file ending in `file`, then fdatasynced (or fsynced) it, and only
/// then answered; prints where each happened.
fn assert_synced_before_the_answer(trace: &Trace, marker: &str, what: &str, file: &str) {
    let path = trace.record_file(marker, file);
    let calls = trace.file_calls(&path);
    let written = trace.record_written(&calls, marker);
    let answered = trace.answer_line();
    assert!(written < answered, "the answer came before the write");
    let syncs = syncs_between(&calls, written, answered);
    if syncs.is_empty() {
        trace.fail(&format!(
            "no fdatasync of {path} between the {what}'s write and the answer"
        ));
    }
    eprintln!(
        "{what}: written to {path} at trace line {written}, {} at line {}, answer at line {answered}",
        syncs[0].name, syncs[0].completed_at
    );
}

#[test]
fn an_acceptance_is_printed_only_after_its_record_is_fdatasynced() {
    let Some(strace) = strace() else {
        return;
    };
    let marker = "durable-marker-7f3a";
    let trace = trace_session(&strace, "full", marker);
    assert_synced_before_the_answer(&trace, marker, "message", ".seg");
}

#[test]
fn with_sync_os_the_trace_shows_no_fdatasync_before_the_answer() {
    let Some(strace) = strace() else {
        return;
    };
    let marker = "os-marker-4c1d";
    let trace = trace_session(&strace, "os", marker);
    let path = trace.record_file(marker, ".seg");
    let calls = trace.file_calls(&path);
    let written = trace.record_written(&calls, marker);
    let answered = trace.answer_line();
    assert!(written < answered, "the answer came before the write");
    let syncs = syncs_between(&calls, written, answered);
    if !syncs.is_empty() {
        trace.fail(&format!("sync = \"os\" still synced: {:?}", syncs[0]));
    }
}

#[test]
fn a_memory_entry_is_acknowledged_only_after_it_is_fdatasynced() {
    let Some(strace) = strace() else {
        return;
    };
    let marker = "memory-marker-9b2e";
    let trace = trace_line(
        &strace,
        "full",
        &format!("/remember {marker} --kind fact"),
        "remember",
    );
    assert_synced_before_the_answer(&trace, marker, "memory entry", "/db/db");
}
