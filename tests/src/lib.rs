//! `dreamos-tests`: helpers for end-to-end scenarios that drive the built `dreamos` binary the way a person would.
//!
//! [`dreamos_bin`] builds the binary once per test process (a no-op when it is fresh) and returns its path.
//! [`Console`] runs `dreamos run --json ...` with piped stdin/stdout, sends command lines, and reads answers and
//! events with deadlines — never sleeps. When something is wrong it panics with the command line, every stdout
//! line seen and the stderr so far, the way ripgrep's `TestCommand` reports failures.
//!
//! [`fake_discord`] is a fake Discord (REST and gateway) on 127.0.0.1 for the real serenity client;
//! [`fake_openai`] a scripted OpenAI-compatible server for the LLM bridge.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{mpsc, Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde_json::Value;

pub mod fake_discord;
pub mod fake_openai;

/// How long any single answer may take before a test fails.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(30);

/// The `dreamos` binary of this workspace, built (incrementally) on first use with the profile of the tests.
pub fn dreamos_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/[<target>/]<profile>/deps/<test-binary> → target/, and whether cargo was given a target.
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps");
        let mut target_dir = profile_dir.parent().expect("target dir");
        let target = env!("DREAMOS_TESTS_TARGET");
        let for_target = !target.is_empty() && target_dir.file_name().is_some_and(|n| n == target);
        if for_target {
            target_dir = target_dir.parent().expect("target dir");
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace)
            .args(["build", "--quiet", "-p", "dreamos-bot", "--bin", "dreamos"])
            .arg("--target-dir")
            .arg(target_dir);
        if for_target {
            build.args(["--target", target]);
        }
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("running cargo build for the dreamos binary");
        assert!(status.success(), "building the dreamos binary failed");
        profile_dir.join(format!("dreamos{}", std::env::consts::EXE_SUFFIX))
    })
}

/// One line the console printed: an answer (has `ok`) or an event (has `event`).
#[derive(Debug, Clone)]
pub enum Line {
    Answer(Value),
    Event(Value),
    /// Not JSON: a bug in `--json` mode, reported by the test.
    Text(String),
}

/// A running `dreamos run --json` child.
pub struct Console {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    command_line: String,
    /// Events read while waiting for answers, oldest first.
    pub events: Vec<Value>,
}

impl Console {
    /// Starts `dreamos run --json --data-dir DIR` plus `extra` arguments, with `env` added to the environment.
    pub fn start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Console {
        let mut command = dreamos_command(&[], env);
        command
            .args(["run", "--json", "--data-dir"])
            .arg(data_dir)
            .args(extra);
        let command_line = format!("{command:?}");
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command_line}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let collected = Arc::new(Mutex::new(String::new()));
        let sink = collected.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().expect("stderr lock");
                text.push_str(&line);
                text.push('\n');
            }
        });
        Console {
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            seen: Vec::new(),
            stderr: collected,
            command_line,
            events: Vec::new(),
        }
    }

    /// Writes one command line.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        if let Err(err) = writeln!(stdin, "{line}").and_then(|_| stdin.flush()) {
            self.fail(&format!("writing `{line}` to stdin failed: {err}"));
        }
    }

    /// Reads the next line, whatever it is, within the deadline; `None` at end of output.
    pub fn next_line(&mut self, deadline: Instant) -> Option<Line> {
        match self.line_before(deadline) {
            Ok(line) => Some(line),
            Err(false) => None,
            Err(true) => self.fail("no output before the deadline"),
        }
    }

    /// The next line if one comes before the deadline; `Err(true)` at the deadline, `Err(false)` at end of output.
    pub fn line_before(&mut self, deadline: Instant) -> Result<Line, bool> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok(text) => {
                self.seen.push(text.clone());
                Ok(match serde_json::from_str::<Value>(&text) {
                    Ok(value) if value.get("ok").is_some() => Line::Answer(value),
                    Ok(value) if value.get("event").is_some() => Line::Event(value),
                    _ => Line::Text(text),
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(false),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(true),
        }
    }

    /// The next answer; events read on the way are kept in [`Console::events`].
    pub fn answer(&mut self) -> Value {
        let deadline = Instant::now() + ANSWER_DEADLINE;
        loop {
            match self.next_line(deadline) {
                Some(Line::Answer(value)) => return value,
                Some(Line::Event(value)) => self.events.push(value),
                Some(Line::Text(text)) => self.fail(&format!("not a JSON line: {text}")),
                None => self.fail("the console exited before answering"),
            }
        }
    }

    /// Sends a line and returns its answer.
    pub fn run(&mut self, line: &str) -> Value {
        self.send(line);
        self.answer()
    }

    /// Sends a line and returns `data`, failing unless the answer is `ok` for `command`.
    pub fn ok(&mut self, line: &str) -> Value {
        let answer = self.run(line);
        if answer["ok"] != Value::Bool(true) {
            self.fail(&format!("`{line}` was refused: {answer}"));
        }
        let command = line
            .trim_start_matches('/')
            .split_whitespace()
            .next()
            .unwrap_or("");
        if answer["command"] != command {
            self.fail(&format!("`{line}` answered for another command: {answer}"));
        }
        answer["data"].clone()
    }

    /// Sends a line and returns the error's kind, failing unless it was refused.
    pub fn refused(&mut self, line: &str) -> (String, String) {
        let answer = self.run(line);
        if answer["ok"] != Value::Bool(false) {
            self.fail(&format!("`{line}` should have been refused: {answer}"));
        }
        let kind = answer["error"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if kind.is_empty() || message.is_empty() {
            self.fail(&format!(
                "`{line}`: an error needs a kind and a message: {answer}"
            ));
        }
        (kind, message)
    }

    /// Waits for an event matching `pred` (looking first at events already read).
    pub fn event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.events.iter().position(&pred) {
            return self.events.remove(i);
        }
        let deadline = Instant::now() + ANSWER_DEADLINE;
        loop {
            match self.next_line(deadline) {
                Some(Line::Event(value)) if pred(&value) => return value,
                Some(Line::Event(value)) => self.events.push(value),
                Some(other) => self.fail(&format!("waiting for {what}, got {other:?}")),
                None => self.fail(&format!("the console exited before {what}")),
            }
        }
    }

    /// Closes stdin and waits for a clean exit; returns the lines printed after the last answer read.
    pub fn finish(mut self) -> Vec<Line> {
        drop(self.stdin.take());
        let deadline = Instant::now() + ANSWER_DEADLINE;
        let mut rest = Vec::new();
        while let Some(line) = self.next_line(deadline) {
            rest.push(line);
        }
        let status = self.wait(deadline);
        if !status.success() {
            self.fail(&format!("exited with {status}"));
        }
        let stderr = self.stderr();
        if stderr.contains("panicked") {
            self.fail("a panic was reported on stderr");
        }
        rest
    }

    /// Kills the child with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to exit by itself (after stdin closed or a signal).
    pub fn wait(&mut self, deadline: Instant) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            self.fail("the process was already reaped");
        };
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(status)) => status,
            Ok(Err(err)) => self.fail(&format!("waiting for the process: {err}")),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                self.fail("did not exit before the deadline (killed it)")
            }
        }
    }

    /// The child's process id, for sending signals.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Takes the child's stdin, for a test that writes from its own thread.
    pub fn take_stdin(&mut self) -> ChildStdin {
        match self.stdin.take() {
            Some(stdin) => stdin,
            None => self.fail("stdin was already taken"),
        }
    }

    /// Closes stdin: the console answers what it has read, drains and exits.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Panics with everything known about the run.
    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{why}\n--- command\n{}\n--- stdout ({} lines)\n{}\n--- stderr\n{}",
            self.command_line,
            self.seen.len(),
            self.seen.join("\n"),
            self.stderr()
        )
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `dreamos ARGS` with piped stdio, `env` added, and `RUST_LOG` removed so logs stay at their configured level.
pub fn dreamos_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(dreamos_bin());
    command
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Runs `dreamos` with arguments to completion; returns (status, stdout, stderr).
pub fn run_dreamos(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> (ExitStatus, String, String) {
    let mut child = dreamos_command(args, env).spawn().expect("start dreamos");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let output = child.wait_with_output().expect("dreamos output");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Writes command lines to a console's stdin on a thread, as fast as the pipe takes them, until stopped or the pipe
/// breaks (the process was killed). `line(n)` is the n-th line.
pub struct Feeder {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Feeder {
    pub fn start(console: &mut Console, line: impl Fn(u64) -> String + Send + 'static) -> Feeder {
        let mut stdin = console.take_stdin();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Acquire) {
                if writeln!(stdin, "{}", line(n)).is_err() {
                    return;
                }
                n += 1;
            }
        });
        Feeder {
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
