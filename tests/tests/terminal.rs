//! The interactive console on a real pseudo-terminal: a key that is not UTF-8 ends only its line, typed-ahead
//! input is kept while a command runs, the Ctrl-C key clears the line at the prompt and stops a running command,
//! SIGINT and SIGTERM sent to the process stop the swarm, and the terminal is left as it was found (echo and line
//! editing on).
#![cfg(unix)]

use std::{
    io::{Read, Write},
    os::fd::{AsFd, OwnedFd},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use dreamos_tests::dreamos_bin;
use nix::sys::termios::{tcgetattr, LocalFlags};

/// `dreamos run` on the slave side of a fresh pty, as its controlling terminal; the master is ours.
struct Terminal {
    child: Child,
    master: std::fs::File,
    slave: OwnedFd,
    screen: Arc<Mutex<Vec<u8>>>,
    /// How much of `screen` the last `expect` consumed.
    read_to: usize,
}

impl Terminal {
    fn start(data: &std::path::Path, env: &[(&str, &str)]) -> Terminal {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup slave"));
        // `setsid -c` makes the pty the controlling terminal, as a login shell would have it.
        let mut command = Command::new("setsid");
        command
            .arg("-c")
            .arg(dreamos_bin())
            .args(["run", "--data-dir"])
            .arg(data)
            .env_remove("RUST_LOG")
            .env("TERM", "xterm")
            .stdin(stdio(&pty.slave))
            .stdout(stdio(&pty.slave))
            .stderr(stdio(&pty.slave));
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start dreamos on a pty");
        let mut reader = std::fs::File::from(pty.master.try_clone().expect("dup master"));
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every slave descriptor is closed.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().expect("screen").extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child,
            master: std::fs::File::from(pty.master),
            slave: pty.slave,
            screen,
            read_to: 0,
        }
    }

    fn type_bytes(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("type");
        self.master.flush().expect("flush");
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().expect("screen")).into_owned()
    }

    /// Waits until `needle` shows after what earlier calls consumed, and consumes up to it.
    fn expect(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            {
                let screen = self.screen.lock().expect("screen");
                let tail =
                    String::from_utf8_lossy(&screen[self.read_to.min(screen.len())..]).into_owned();
                if let Some(at) = tail.find(needle) {
                    // Byte offsets of the lossy copy match the raw bytes for the ASCII needles used here.
                    self.read_to += at + needle.len();
                    return;
                }
            }
            if Instant::now() >= deadline {
                panic!(
                    "`{needle}` did not show within {within:?}; the screen:\n{}",
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn echo_and_canonical(&self) -> (bool, bool) {
        let t = tcgetattr(self.slave.as_fd()).expect("tcgetattr");
        (
            t.local_flags.contains(LocalFlags::ECHO),
            t.local_flags.contains(LocalFlags::ICANON),
        )
    }

    fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("dreamos did not exit; the screen:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PROMPT: &str = "dreamos> ";
const START: Duration = Duration::from_secs(60);
const ANSWER: Duration = Duration::from_secs(30);

#[test]
fn a_key_that_is_not_utf8_ends_only_its_line_and_the_terminal_is_restored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut term = Terminal::start(&dir.path().join("data"), &[]);
    term.expect(PROMPT, START);
    // A Latin-1 é, as a terminal in a Latin-1 locale sends it.
    term.type_bytes(b"/send agent-1 caf\xe9 --wait\r");
    term.expect("invalid_input", ANSWER);
    term.expect(PROMPT, ANSWER);
    term.type_bytes(b"/send agent-1 after --wait\r");
    term.expect("pong: after", ANSWER);
    term.expect(PROMPT, ANSWER);
    // Ctrl-C clears the line being typed and says how to leave; the session goes on.
    term.type_bytes(b"/send agent-1 never\x03");
    term.expect("Ctrl-C clears the line", ANSWER);
    term.type_bytes(b"/quit\r");
    assert!(term.wait(ANSWER).success(), "{}", term.text());
    assert!(
        !term.text().contains("pong: never"),
        "a cleared line must not run"
    );
    assert_eq!(
        term.echo_and_canonical(),
        (true, true),
        "the terminal is left with echo and line editing on"
    );
}

#[test]
fn typed_ahead_input_is_kept_ctrl_c_stops_only_the_running_command_and_sigint_stops_the_swarm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut term = Terminal::start(
        &dir.path().join("data"),
        &[("DREAMOS_DEBUG__FAULT_SKILL", "true")],
    );
    term.expect(PROMPT, START);
    // The second line is typed while the first still runs (the agent sleeps 1.5 s before answering).
    term.type_bytes(b"/send agent-1 sleep 1500 --kind fault --wait\r");
    term.expect("sleep 1500", ANSWER);
    term.type_bytes(b"/send agent-1 typed-ahead --wait\r");
    term.expect("slept", ANSWER);
    term.expect("pong: typed-ahead", ANSWER);
    term.expect(PROMPT, ANSWER);
    // Ctrl-C while a command runs (the terminal is not raw then, so the key is SIGINT) stops that command only.
    term.type_bytes(b"/send agent-1 sleep 60000 --kind fault --wait\r");
    term.expect("sleep 60000", ANSWER);
    // The line is read once the editor gives the terminal back (echo and line editing on again).
    let deadline = Instant::now() + ANSWER;
    while term.echo_and_canonical() != (true, true) {
        assert!(
            Instant::now() < deadline,
            "the editor kept the terminal raw"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    term.type_bytes(b"\x03");
    term.expect("interrupted", ANSWER);
    term.expect(PROMPT, ANSWER);
    term.type_bytes(b"/send agent-2 still-here --wait\r");
    term.expect("pong: still-here", ANSWER);
    term.expect(PROMPT, ANSWER);
    // SIGINT sent to the process at the prompt stops the swarm, cleanly.
    let status = Command::new("kill")
        .args(["-INT", &term.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = term.wait(ANSWER);
    assert!(exit.success(), "exit {exit}: {}", term.text());
    assert_eq!(term.echo_and_canonical(), (true, true));
}

#[test]
fn sigterm_while_the_line_editor_has_the_terminal_puts_the_terminal_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut term = Terminal::start(&dir.path().join("data"), &[]);
    term.expect(PROMPT, START);
    // Half a line typed: the editor holds the terminal raw.
    term.type_bytes(b"/stat");
    term.expect("/stat", ANSWER);
    assert_eq!(
        term.echo_and_canonical(),
        (false, false),
        "raw while editing"
    );
    let status = Command::new("kill")
        .args(["-TERM", &term.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = term.wait(ANSWER);
    assert!(exit.success(), "exit {exit}: {}", term.text());
    assert_eq!(term.echo_and_canonical(), (true, true));
}
