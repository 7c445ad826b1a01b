//! The read-only tools (`dreamos search`, `symbol`, `refs`, ...) answered by the swarm running on the same data
//! directory, over a Unix socket in it (`<data-dir>/tools.sock`).
//!
//! Why: a tool that opens the index itself spends most of its few milliseconds on first touches (mapping the index's
//! files, faulting in term dictionaries, decompressing its first blocks). The swarm has all of that warm, so the
//! tool's process asks it and prints the answer. When no swarm answers (none runs, the socket is stale, the swarm is
//! another version, or it is busy), the tool opens the index itself; the output is the same either way.
//! `DREAMOS_TOOLS=local` always opens the index; `DREAMOS_TOOLS=swarm` fails instead of opening it.
//!
//! The swarm answers with its own configuration (`[scanner]` limits), and sees every commit made before the
//! question, by any process ([`dreamos_scanner::CodeIndex::catch_up`]). A tool given `--config` opens the index
//! itself, since it asked for a configuration of its own.
//!
//! Protocol, one question per connection: the tool sends a 4-byte little-endian length and a JSON [`Request`]
//! (the tool it parsed, or, from [`quick`] before its process starts, the words of its command line); the swarm
//! answers with frames, each a kind byte, a 4-byte little-endian length and that many bytes: `o` (stdout), `e`
//! (stderr), `x` (the exit code, one byte, last) or `r` (refused, with the reason: the tool answers itself).
//! At most [`MAX_ANSWERING`] questions are answered at once, on threads started with the server that take turns
//! accepting; more are refused at once, never queued. The socket is made readable and writable by its owner only.

use std::{
    io::{BufWriter, Read, Write},
    os::unix::net::{UnixListener, UnixStream},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::{bail, Context as _};
use dreamos_runtime::Config;
use dreamos_scanner::CodeIndex;
use serde::{Deserialize, Serialize};

use crate::code_cli::{Out, Tool};

/// The socket's name in the data directory.
pub const SOCKET: &str = "tools.sock";

/// Questions answered at once; the next is refused, and its tool answers itself.
pub const MAX_ANSWERING: usize = 8;

/// The largest question accepted. Arguments are a query and a few options.
const MAX_REQUEST: u32 = 64 * 1024;

/// The largest frame: what a tool prints goes out in pieces of at most this many bytes.
const MAX_FRAME: usize = 1 << 20;

/// How long the swarm waits for a question once connected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One question, as the tool sends it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// The asking binary's version: a swarm of another version refuses, since its tools' arguments may differ.
    pub version: String,
    /// The tool's working directory, which file arguments are relative to.
    pub cwd: PathBuf,
    pub ask: Ask,
}

/// What a tool asks the swarm to run.
#[derive(Debug, Serialize, Deserialize)]
pub enum Ask {
    /// A tool whose command line the asking process has read.
    Tool(Tool),
    /// The words of a command line after the program's name, for the swarm to read: what a tool sends when it asks
    /// before reading its own command line ([`quick`]). The swarm refuses a line that is not a tool's, that names a
    /// configuration or a data directory, or that does not parse; the tool then reads it itself and says what is
    /// wrong, as it would alone.
    Line(Vec<String>),
}

/// The names of the tools the swarm answers, as their first word on the command line: every [`Tool`]
/// (`served::tests` checks the list against the command line's definition).
pub const TOOL_NAMES: [&str; 8] = [
    "search", "symbol", "outline", "deps", "refs", "impact", "symbols", "repos",
];

/// Which way the read-only tools go, from `DREAMOS_TOOLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Ask the swarm; answer here when none answers (the default).
    Auto,
    /// Always open the index here.
    Here,
    /// Only the swarm: fail when none answers.
    Swarm,
}

impl Via {
    /// Reads `DREAMOS_TOOLS`: unset, empty or `auto`, `local`, or `swarm`.
    pub fn from_env() -> anyhow::Result<Via> {
        match std::env::var("DREAMOS_TOOLS") {
            Err(std::env::VarError::NotPresent) => Ok(Via::Auto),
            Ok(v) if v.is_empty() || v == "auto" => Ok(Via::Auto),
            Ok(v) if v == "local" => Ok(Via::Here),
            Ok(v) if v == "swarm" => Ok(Via::Swarm),
            Ok(v) => bail!(
                "DREAMOS_TOOLS is {:?}; use auto (the swarm when it runs), local or swarm",
                crate::command::clip_long(&v)
            ),
            Err(std::env::VarError::NotUnicode(_)) => {
                bail!("DREAMOS_TOOLS is not UTF-8; use auto, local or swarm")
            }
        }
    }
}

/// Asks the swarm on `data_dir` to run `tool`, copying its answer to this process's stdout and stderr. `None` when
/// no swarm answered and the tool should answer itself (never with [`Via::Swarm`]: that is an error).
pub fn ask(data_dir: &Path, tool: &Tool, via: Via) -> anyhow::Result<Option<ExitCode>> {
    let path = data_dir.join(SOCKET);
    let not_answered = |why: String| -> anyhow::Result<Option<ExitCode>> {
        match via {
            Via::Swarm => bail!(
                "DREAMOS_TOOLS=swarm, but no swarm answered at {}: {why}; start `dreamos run` on this data directory, or unset DREAMOS_TOOLS",
                path.display()
            ),
            _ => Ok(None),
        }
    };
    let mut stream = match UnixStream::connect(&path) {
        Ok(stream) => stream,
        Err(err) => return not_answered(err.to_string()),
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    if let Err(why) = send_question(&mut stream, cwd, Ask::Tool(tool.clone())) {
        return not_answered(why);
    }
    match copy_answer(
        &mut stream,
        BufWriter::new(std::io::stdout().lock()),
        std::io::stderr(),
    ) {
        Copied::Answered(code) => Ok(Some(ExitCode::from(code))),
        Copied::NotAnswered(why) => not_answered(why),
        Copied::Foreign(kind) => bail!("{}", foreign(kind)),
    }
}

/// Sends one question on `stream`; the reason when it cannot be sent (the tool then answers itself).
pub(crate) fn send_question(stream: &mut UnixStream, cwd: PathBuf, ask: Ask) -> Result<(), String> {
    let request = Request {
        version: env!("CARGO_PKG_VERSION").to_string(),
        cwd,
        ask,
    };
    let body = match serde_json::to_vec(&request) {
        Ok(body) if body.len() <= MAX_REQUEST as usize => body,
        // A path that is not UTF-8, or arguments too long to send: answer here.
        Ok(_) => return Err("the arguments are too long to send".to_string()),
        Err(err) => return Err(format!("the arguments cannot be sent: {err}")),
    };
    let mut message = Vec::with_capacity(4 + body.len());
    message.extend_from_slice(&(body.len() as u32).to_le_bytes());
    message.extend_from_slice(&body);
    stream.write_all(&message).map_err(|err| err.to_string())
}

/// How an answer ended, as [`copy_answer`] copied it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Copied {
    /// Copied, with this exit code. A failure once printing began (the swarm stopped, a frame of unknown kind,
    /// stdout failing) is printed to stderr too, with exit code 1; a reader that went away ends it with 0.
    Answered(u8),
    /// Nothing printed: the swarm refused (its reason) or closed the connection before answering.
    NotAnswered(String),
    /// Nothing printed: the first frame is of a kind this version does not know.
    Foreign(u8),
}

/// The error of a frame of unknown kind.
fn foreign(kind: u8) -> String {
    format!("the swarm answered with a frame of unknown kind {kind:#04x}; is it another version of dreamos?")
}

/// Copies an answer's frames to `stdout` and `stderr` until its exit code.
pub(crate) fn copy_answer(
    mut answer: impl Read,
    mut stdout: impl Write,
    mut stderr: impl Write,
) -> Copied {
    fn fail(stdout: &mut impl Write, stderr: &mut impl Write, line: &str) -> Copied {
        let _ = stdout.flush();
        let _ = stderr.write_all(format!("error: {line}\n").as_bytes());
        Copied::Answered(1)
    }
    // A reader that went away (`dreamos symbols | head`) ends the tool quietly, as it does when answering itself.
    fn closed(stderr: &mut impl Write, err: std::io::Error) -> Copied {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            Copied::Answered(0)
        } else {
            let _ = stderr.write_all(format!("error: writing to stdout: {err}\n").as_bytes());
            Copied::Answered(1)
        }
    }
    let mut answered = false;
    loop {
        let frame = match read_frame(&mut answer) {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) if !answered => {
                return Copied::NotAnswered(
                    "it closed the connection without answering".to_string(),
                )
            }
            Ok(None) | Err(_) => {
                return fail(
                    &mut stdout,
                    &mut stderr,
                    "the swarm stopped while answering; run the command again",
                )
            }
        };
        match frame {
            (b'r', why) if !answered => {
                return Copied::NotAnswered(String::from_utf8_lossy(&why).into_owned())
            }
            (b'o', bytes) => {
                answered = true;
                if let Err(err) = stdout.write_all(&bytes) {
                    return closed(&mut stderr, err);
                }
            }
            (b'e', bytes) => {
                answered = true;
                if let Err(err) = stdout.flush() {
                    return closed(&mut stderr, err);
                }
                let _ = stderr.write_all(&bytes);
            }
            (b'x', code) if code.len() == 1 => {
                return match stdout.flush() {
                    Ok(()) => Copied::Answered(code[0]),
                    Err(err) => closed(&mut stderr, err),
                };
            }
            (kind, _) if !answered => return Copied::Foreign(kind),
            (kind, _) => return fail(&mut stdout, &mut stderr, &foreign(kind)),
        }
    }
}

/// One frame, or `None` at the end of the stream before a frame starts.
pub(crate) fn read_frame(stream: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match stream.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes; at most {MAX_FRAME} are sent"),
        ));
    }
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes)?;
    Ok(Some((head[0], bytes)))
}

/// Writes one frame.
fn write_frame(mut stream: &UnixStream, kind: u8, bytes: &[u8]) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(5 + bytes.len());
    put_frame(&mut frame, kind, bytes);
    stream.write_all(&frame)
}

/// Appends one frame to `out`.
fn put_frame(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
    out.push(kind);
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A stream of frames of one kind: the tool's stdout or stderr, sent to the process that asked.
struct Frames<'a> {
    answer: &'a Answer<'a>,
    kind: u8,
}

impl Write for Frames<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The BufWriter in front of this sends at most its capacity at a time anyway.
        let len = buf.len().min(MAX_FRAME);
        self.answer.frame(self.kind, &buf[..len])?;
        Ok(len)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How many bytes of frames an answer gathers before it sends them.
const GATHER: usize = 64 * 1024;

/// The frames of one answer, gathered and sent together: a short answer goes out in one write with its exit code,
/// so the tool reads it in one go; a long one goes out [`GATHER`] bytes at a time.
struct Answer<'a> {
    stream: &'a UnixStream,
    gathered: std::cell::RefCell<Vec<u8>>,
}

impl<'a> Answer<'a> {
    fn new(stream: &'a UnixStream) -> Answer<'a> {
        Answer {
            stream,
            gathered: std::cell::RefCell::new(Vec::new()),
        }
    }

    fn frame(&self, kind: u8, bytes: &[u8]) -> std::io::Result<()> {
        let mut gathered = self.gathered.borrow_mut();
        put_frame(&mut gathered, kind, bytes);
        if gathered.len() >= GATHER {
            let result = (&mut &*self.stream).write_all(&gathered);
            gathered.clear();
            result?;
        }
        Ok(())
    }

    /// Sends what is gathered, ending with the exit code.
    fn end(self, code: u8) {
        let mut gathered = self.gathered.into_inner();
        put_frame(&mut gathered, b'x', &[code]);
        let _ = (&mut &*self.stream).write_all(&gathered);
    }
}

/// The swarm's side: answers the tools' questions on `<data-dir>/tools.sock` until stopped.
pub struct Server {
    path: PathBuf,
    /// The listening socket, to wake the accept loop at stop even when the socket's file is gone.
    listener: UnixListener,
    /// Dropped at stop: wakes the threads waiting for their turn to accept, and tells the one accepting to end.
    stop: Option<crossbeam_channel::Sender<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts answering on `<data_dir>/tools.sock` from `index`, with `config`. The caller holds the data directory
    /// (the store's lock), so a socket file already there was left by a swarm that died, and is replaced.
    pub fn start(data_dir: &Path, index: CodeIndex, config: Arc<Config>) -> anyhow::Result<Server> {
        let path = data_dir.join(SOCKET);
        if UnixStream::connect(&path).is_ok() {
            bail!(
                "another process answers at {} already; the tools will ask it",
                path.display()
            );
        }
        match std::fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("removing the stale {}", path.display()))
            }
            _ => {}
        }
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("listening on {}", path.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} private", path.display()))?;
        }
        let waker = listener
            .try_clone()
            .context("keeping the tools' socket to close it at stop")?;
        // One thread accepts at a time; with a question, it hands the turn to accept to the threads that do not
        // answer, and answers the question itself, so no other thread has to wake before the answer. When
        // MAX_ANSWERING questions are being answered, it refuses the question and goes on accepting. There is one
        // thread more than answers, so one always takes the turn. The turn is the one message of its channel.
        let listener = Arc::new(listener);
        let answering = Arc::new(AtomicUsize::new(0));
        let (turn, turns) = crossbeam_channel::bounded::<()>(1);
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let mut threads = Vec::with_capacity(MAX_ANSWERING + 1);
        for n in 0..=MAX_ANSWERING {
            let taker = Taker {
                listener: listener.clone(),
                turn: turn.clone(),
                turns: turns.clone(),
                stopped: stopped.clone(),
                answering: answering.clone(),
            };
            let (index, config) = (index.clone(), config.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("tool-answer-{n}"))
                .spawn(move || taker.serve(&index, &config))
                .context("starting a thread to answer the tools");
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(err) => {
                    // The threads started end with the stop's sender.
                    drop(stop);
                    return Err(err);
                }
            }
        }
        // The first turn to accept.
        let _ = turn.send(());
        tracing::info!(socket = %path.display(), "answering the read-only tools (dreamos search, ...)");
        Ok(Server {
            path,
            listener: waker,
            stop: Some(stop),
            threads,
        })
    }

    /// Stops answering and removes the socket, once the answers under way are finished.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        let Some(stop) = self.stop.take() else {
            return;
        };
        drop(stop);
        // Shutting the listening socket down fails the accept under way (Linux), and the thread sees the stop.
        {
            use std::os::fd::AsRawFd;
            if let Err(err) = nix::sys::socket::shutdown(
                self.listener.as_raw_fd(),
                nix::sys::socket::Shutdown::Both,
            ) {
                tracing::debug!(error = %err, "shutting the tools' socket down");
                // Wakes the loop with a connection instead.
                let _ = UnixStream::connect(&self.path);
            }
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Counts an answer as ended when dropped, however it ends.
struct Answering(Arc<AtomicUsize>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One of the threads that take turns accepting the tools' questions, and answer them.
struct Taker {
    listener: Arc<UnixListener>,
    /// Hands the turn to accept to a thread that waits for it.
    turn: crossbeam_channel::Sender<()>,
    /// Where a thread waits for its turn to accept.
    turns: crossbeam_channel::Receiver<()>,
    /// Disconnected at stop.
    stopped: crossbeam_channel::Receiver<()>,
    /// How many questions are being answered.
    answering: Arc<AtomicUsize>,
}

impl Taker {
    fn serve(self, index: &CodeIndex, config: &Config) {
        let mut reader = LineReader::default();
        loop {
            crossbeam_channel::select! {
                recv(self.turns) -> turn => if turn.is_err() { return },
                recv(self.stopped) -> _ => return,
            }
            let Some(stream) = self.accept() else {
                return;
            };
            let _answering = Answering(self.answering.clone());
            answer(&stream, index, config, &mut reader);
        }
    }

    /// Accepts until a question comes that this thread may answer, counted in `answering`, with the turn handed
    /// on; `None` at stop. A question that comes while [`MAX_ANSWERING`] are being answered is refused: never queued.
    fn accept(&self) -> Option<UnixStream> {
        loop {
            let accepted = self.listener.accept();
            if self.stopped.try_recv() == Err(crossbeam_channel::TryRecvError::Disconnected) {
                return None;
            }
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::debug!(error = %err, "accepting a tool's connection failed");
                    // Out of descriptors, say: the tools answer themselves meanwhile; do not spin.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if self.answering.fetch_add(1, Ordering::SeqCst) < MAX_ANSWERING {
                // The channel is empty: this thread took the only turn.
                let _ = self.turn.try_send(());
                return Some(stream);
            }
            self.answering.fetch_sub(1, Ordering::SeqCst);
            let _ = write_frame(
                &stream,
                b'r',
                format!("busy: {MAX_ANSWERING} questions are being answered").as_bytes(),
            );
        }
    }
}

/// Reads one question from `stream` and answers it.
fn answer(stream: &UnixStream, index: &CodeIndex, config: &Config, reader: &mut LineReader) {
    let refuse = |why: &str| {
        let _ = write_frame(stream, b'r', why.as_bytes());
    };
    let request = match read_request(stream) {
        Ok(request) => request,
        Err(why) => return refuse(&why),
    };
    if request.version != env!("CARGO_PKG_VERSION") {
        return refuse(&format!(
            "the swarm runs dreamos {}, the tool is {}",
            env!("CARGO_PKG_VERSION"),
            crate::command::clip_long(&request.version)
        ));
    }
    let tool = match request.ask {
        Ask::Tool(tool) => {
            tracing::debug!("answering a tool that read its command line");
            tool
        }
        Ask::Line(words) => match reader.read(words) {
            Some(tool) => {
                tracing::debug!("answering a tool's command line");
                tool
            }
            None => {
                return refuse(
                    "a command line the swarm does not answer (not a tool's, with --config or --data-dir, or one that does not parse)",
                )
            }
        },
    };
    let answer = Answer::new(stream);
    let outcome = index
        .catch_up()
        .context("reading the latest commit of the code index")
        .and_then(|()| {
            let mut out = Out::to(
                Frames {
                    answer: &answer,
                    kind: b'o',
                },
                Frames {
                    answer: &answer,
                    kind: b'e',
                },
            );
            tool.run(index, config, &request.cwd, &mut out)?;
            out.done()
        });
    let code = match outcome {
        Ok(()) => 0,
        Err(err) => {
            let _ = answer.frame(b'e', crate::cli::error_line(&err).as_bytes());
            1
        }
    };
    answer.end(code);
}

/// Reads command lines' words (after the program's name) with the command line's definition, built once.
#[derive(Default)]
struct LineReader {
    command: Option<clap::Command>,
}

impl LineReader {
    /// The tool that `words` run, when they run one the swarm answers: a tool, without `--config` (the tool
    /// answers itself with that configuration) or `--data-dir` (the asking process found this swarm from it, and
    /// sends the line without it). Help, a version or a malformed line is for the tool to print.
    fn read(&mut self, words: Vec<String>) -> Option<Tool> {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let command = self.command.get_or_insert_with(|| {
            let mut command = crate::cli::Cli::command();
            command.build();
            command
        });
        let matches = command
            .try_get_matches_from_mut(std::iter::once("dreamos".to_string()).chain(words))
            .ok()?;
        match crate::cli::Cli::from_arg_matches(&matches).ok()? {
            crate::cli::Cli {
                data_dir: None,
                config: None,
                command: crate::cli::Command::Tool(tool),
            } => Some(tool),
            _ => None,
        }
    }
}

fn read_request(mut stream: &UnixStream) -> Result<Request, String> {
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(|err| format!("reading the question: {err}"))?;
    let len = u32::from_le_bytes(len);
    if len > MAX_REQUEST {
        return Err(format!(
            "a question of {len} bytes; at most {MAX_REQUEST} are read"
        ));
    }
    let mut body = vec![0; len as usize];
    stream
        .read_exact(&mut body)
        .map_err(|err| format!("reading the question: {err}"))?;
    serde_json::from_slice(&body).map_err(|err| format!("a question that cannot be read: {err}"))
}

pub mod quick;

#[cfg(test)]
mod tests;
