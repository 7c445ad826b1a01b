//! The console frontend: the embedded default, where the person at the keyboard is the captain.
//!
//! On a terminal it is a line editor (rustyline) with history and completion; events that happen meanwhile show
//! when a line is entered.
//! When standard input is not a terminal it reads one command per line, answers each in order, prints events as
//! they happen, and at end of input drains the agents, flushes and exits 0. Answers and events go to stdout, one
//! line each (`--json`: one JSON object each); logs go to stderr.
//!
//! The line rules, which make "one answer per line" exact for scripts: every line gets exactly one answer,
//! whatever bytes it holds (a line that is not UTF-8 or is longer than `[console] max_line_bytes` gets an
//! `invalid_input` error), except blank lines (whitespace of any kind) and lines starting with `#`, which are
//! comments and get none. `/quit` and `/exit` are answered, then end the session like the end of input. A reply
//! that a `--wait` answer includes is not printed again as an event. Text output escapes control characters from
//! messages, files and names, so nothing reaches the terminal raw; JSON output is exact.

use std::{
    collections::HashSet,
    io::{IsTerminal, Write},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use dreamos_agents::{
    events::{EventReceiver, RecvError, TryRecvError},
    message::MessageId,
    SwarmEvent,
};
use parking_lot::Mutex;
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, BufReader},
    sync::{mpsc, oneshot},
};

use crate::{
    answer::Reply,
    command::complete::{complete, names_of, Names},
    render,
    session::{Answer, CommandError, Session},
};

pub struct ConsoleOptions {
    pub json: bool,
    /// How long to let agents finish queued work at end of input.
    pub drain_timeout: Duration,
    /// Line-editor history, when on a terminal.
    pub history_file: PathBuf,
    /// Longest line read from a pipe; a longer one is refused whole.
    pub max_line_bytes: usize,
}

/// Where lines go: one writer, whole lines, flushed at once (a script reading answers must see them now).
struct Output {
    json: bool,
    lock: Mutex<()>,
    /// Replies a `--wait` answer includes (or waits for): not printed again as events.
    shown: Arc<Mutex<HashSet<MessageId>>>,
}

impl Output {
    fn line(&self, text: &str) {
        let _guard = self.lock.lock();
        let mut stdout = std::io::stdout().lock();
        // A closed stdout (the reader went away) is not worth dying for; the swarm still shuts down cleanly.
        let _ = writeln!(stdout, "{text}");
        let _ = stdout.flush();
    }

    fn answer(&self, answer: &Answer) -> String {
        if let Ok(Reply::Send(sent)) = &answer.result {
            // No reply in time: it will come as an event after all.
            if matches!(sent.reply, Some(None)) {
                self.shown.lock().remove(&sent.id);
            }
        }
        if self.json {
            render::answer_json(answer)
        } else {
            render::printable(&render::answer_text(answer))
        }
    }

    /// An event as a line, or `None` for a reply a `--wait` answer shows.
    fn event(&self, event: &SwarmEvent) -> Option<String> {
        if let SwarmEvent::Message(message) = event {
            if let Some(to) = message.envelope.reply_to {
                if self.shown.lock().remove(&to) {
                    return None;
                }
            }
        }
        Some(if self.json {
            render::event_json(event)
        } else {
            render::printable(&render::event_text(event))
        })
    }
}

/// How the session ended.
enum End {
    /// End of input or /quit: drain, then stop.
    Input,
    /// SIGINT or SIGTERM: stop now (after the current messages).
    Signal,
    /// The store failed: stop now and exit with an error.
    Fatal(String),
    /// The frontend running beside the console (Discord) failed: stop and exit with its error.
    Companion(anyhow::Error),
}

/// Another frontend running beside the console (the Discord frontend). It is told to stop before the swarm
/// stops, and the swarm stops when it fails.
pub struct Companion {
    stop: tokio::sync::watch::Sender<bool>,
    ended: Option<oneshot::Receiver<anyhow::Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl Companion {
    /// Starts `make(stop)`, which must return once `stop` changes.
    pub fn spawn<F>(make: impl FnOnce(tokio::sync::watch::Receiver<bool>) -> F) -> Companion
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (tx, ended) = oneshot::channel();
        let work = make(stopped);
        let task = tokio::spawn(async move {
            if let Err(err) = work.await {
                let _ = tx.send(err);
            }
        });
        Companion {
            stop,
            ended: Some(ended),
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Resolves with the companion's error if it fails; never when there is none, or it ends cleanly.
async fn companion_failed(companion: &mut Option<Companion>) -> anyhow::Error {
    match companion.as_mut().and_then(|c| c.ended.as_mut()) {
        Some(ended) => match ended.await {
            Ok(err) => err,
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Runs the console (when `console` is set; otherwise waits for a signal) beside `companion`, until end of input,
/// /quit, a signal, a failed store or a failed companion; then stops the companion and shuts the swarm down.
pub async fn run(
    session: Session,
    options: ConsoleOptions,
    mut companion: Option<Companion>,
    console: bool,
) -> anyhow::Result<()> {
    let shown: Arc<Mutex<HashSet<MessageId>>> = Arc::new(Mutex::new(HashSet::new()));
    let output = Arc::new(Output {
        json: options.json,
        lock: Mutex::new(()),
        shown: shown.clone(),
    });
    let session = session.with_wait_observer(Arc::new(move |id| {
        shown.lock().insert(id);
    }));
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut printer = None;
    let end = if !console {
        let swarm = session.swarm().clone();
        tokio::select! {
            _ = shutdown_signal() => End::Signal,
            error = swarm.failed() => End::Fatal(error),
            error = companion_failed(&mut companion) => End::Companion(error),
        }
    } else if interactive {
        interactive_loop(&session, &output, &options, &mut companion).await?
    } else {
        printer = Some(print_events(
            session.swarm().events_since_start(),
            output.clone(),
        ));
        line_loop(&session, &output, &mut companion, options.max_line_bytes).await?
    };
    if let Some(companion) = companion {
        companion.stop().await;
    }
    finish(&session, &options, &end).await;
    if let Some((stop, printer)) = printer {
        let _ = stop.send(());
        let _ = printer.await;
    }
    shutdown(&session, &options, end).await
}

async fn finish(session: &Session, options: &ConsoleOptions, end: &End) {
    if let End::Input = end {
        if !session.swarm().drain(options.drain_timeout).await {
            tracing::warn!(
                timeout = %humantime::format_duration(options.drain_timeout),
                "agents did not finish their queues in time; the rest stays queued for the next start"
            );
        }
    }
}

async fn shutdown(session: &Session, options: &ConsoleOptions, end: End) -> anyhow::Result<()> {
    session.swarm().shutdown(options.drain_timeout).await;
    match end {
        End::Fatal(error) => Err(anyhow::anyhow!(
            "the store failed ({error}); dreamos stopped so that nothing acknowledged is lost. Messages not yet \
             handled are delivered again at the next start: restart it once the disk is healthy"
        )),
        End::Companion(error) => Err(error),
        End::Input | End::Signal => Ok(()),
    }
}

/// Prints events until told to stop; then prints what is already queued and returns.
fn print_events(
    mut events: EventReceiver,
    output: Arc<Output>,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Ok(event) => if let Some(line) = output.event(&event) { output.line(&line) },
                    Err(RecvError::Lagged(missed)) => output.line(&lagged(&output, missed)),
                    Err(RecvError::Closed) => return,
                },
                _ = &mut stopped => {
                    loop {
                        match events.try_recv() {
                            Ok(event) => if let Some(line) = output.event(&event) { output.line(&line) },
                            Err(TryRecvError::Lagged(missed)) => output.line(&lagged(&output, missed)),
                            Err(_) => return,
                        }
                    }
                }
            }
        }
    });
    (stop, task)
}

fn lagged(output: &Output, missed: u64) -> String {
    if output.json {
        serde_json::json!({ "event": "lagged", "data": { "missed": missed } }).to_string()
    } else {
        format!("[lagged] {missed} events were dropped because the console fell behind")
    }
}

/// One line of a pipe, as read.
enum Input {
    Line(String),
    /// Not UTF-8: where the first bad byte is.
    NotUtf8 {
        at: usize,
    },
    /// Longer than the limit (the rest was read and dropped).
    TooLong {
        bytes: usize,
    },
}

/// Reads one line of at most `max` bytes, never holding more than that in memory; `None` at end of input.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Input>> {
    let mut line: Vec<u8> = Vec::new();
    let mut total = 0usize;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            if total == 0 {
                return Ok(None);
            }
            break;
        }
        let (chunk, done) = match memchr(buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        total += chunk.len();
        if line.len() < max {
            let room = max - line.len();
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            break;
        }
    }
    if total > max {
        return Ok(Some(Input::TooLong { bytes: total }));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(match String::from_utf8(line) {
        Ok(text) => Input::Line(text),
        Err(err) => Input::NotUtf8 {
            at: err.utf8_error().valid_up_to(),
        },
    }))
}

fn memchr(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|b| *b == b'\n')
}

/// The answer to a line that could not even be read as a command.
fn invalid_input(message: String) -> Answer {
    Answer {
        command: String::new(),
        result: Err(CommandError {
            kind: "invalid_input".to_string(),
            message,
        }),
    }
}

/// The answer to `/quit` and `/exit`.
fn bye(line: &str) -> String {
    let name = line.trim_start_matches('/');
    format!("{{\"ok\":true,\"command\":\"{name}\",\"data\":{{\"bye\":true}}}}")
}

/// Standard input is not a terminal: one command per line, in order.
async fn line_loop(
    session: &Session,
    output: &Output,
    companion: &mut Option<Companion>,
    max_line_bytes: usize,
) -> anyhow::Result<End> {
    let mut reader = BufReader::new(tokio::io::stdin());
    let mut signal = std::pin::pin!(shutdown_signal());
    let swarm = session.swarm().clone();
    let mut fatal = std::pin::pin!(swarm.failed());
    let mut number = 0u64;
    loop {
        let input = tokio::select! {
            error = &mut fatal => return Ok(End::Fatal(error)),
            error = companion_failed(companion) => return Ok(End::Companion(error)),
            input = read_line(&mut reader, max_line_bytes) => input.context("reading standard input")?,
            _ = &mut signal => return Ok(End::Signal),
        };
        number += 1;
        let line = match input {
            None => return Ok(End::Input),
            Some(Input::Line(line)) => line,
            Some(Input::NotUtf8 { at }) => {
                let answer = invalid_input(format!(
                    "line {number} is not valid UTF-8 (a bad byte at offset {at}); it was not run"
                ));
                output.line(&output.answer(&answer));
                continue;
            }
            Some(Input::TooLong { bytes }) => {
                let answer = invalid_input(format!(
                    "line {number} has {bytes} bytes, over [console] max_line_bytes = {max_line_bytes}; it was not run"
                ));
                output.line(&output.answer(&answer));
                continue;
            }
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if is_quit(line) {
            output.line(&if output.json {
                bye(line)
            } else {
                "bye".to_string()
            });
            return Ok(End::Input);
        }
        // A signal stops a command that is still running (a long search, say) rather than waiting for it.
        let answer = tokio::select! {
            answer = session.run(line) => answer,
            _ = &mut signal => return Ok(End::Signal),
            error = &mut fatal => return Ok(End::Fatal(error)),
        };
        output.line(&output.answer(&answer));
    }
}

fn is_quit(line: &str) -> bool {
    matches!(line, "/quit" | "/exit")
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Resolves on SIGTERM.
async fn terminate_signal() {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            terminate.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

/// A terminal: rustyline on its own thread (it blocks), commands run here, events printed above the prompt.
async fn interactive_loop(
    session: &Session,
    output: &Arc<Output>,
    options: &ConsoleOptions,
    companion: &mut Option<Companion>,
) -> anyhow::Result<End> {
    // Events that happen while the user types are shown when a line is entered (an empty line shows them), above
    // that line's answer. Printing them at once from another thread would land inside the prompt; rustyline's
    // external printer, meant for that, stopped echoing typed characters in our tests under tmux.
    let greeting = format!(
        "dreamos console — {} agents. Type /help for commands, /quit or Ctrl-D to leave. \
         Replies and notices show when you press Enter (or use /send ... --wait).",
        session.swarm().agents().len()
    );
    output.line(&greeting);
    let mut events = session.swarm().events_since_start();
    let names: Arc<Mutex<Names>> = Arc::new(Mutex::new(names_of(session.swarm()).await));
    let (line_tx, mut line_rx) = mpsc::channel::<String>(1);
    // SIGTERM can end the console while the editor thread holds the terminal raw: its settings are put back on
    // the way out.
    let terminal = SavedTerminal::save();
    // The editor thread prints each answer itself, between two prompts: text written to the terminal by another
    // thread while the line editor owns it lands inside the prompt and garbles what the user types.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<String>();
    let history = options.history_file.clone();
    let helper_names = names.clone();
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let editor = std::thread::Builder::new()
        .name("dreamos-console".to_string())
        .spawn(move || editor_thread(history, helper_names, line_tx, done_rx, ready_tx))
        .context("starting the console thread")?;
    // On a terminal, the Ctrl-C key works as in a shell: at the prompt it clears the line (a key, as the editor
    // holds the terminal raw), while a command runs it is SIGINT and stops that command. rustyline installs a SIGINT handler of its own when its editor is made, for its whole
    // life; ours goes in after it and calls it in turn (signal-hook-registry chains to the handler it replaces),
    // so both hear every SIGINT.
    let _ = ready_rx.await;
    let mut interrupts = Interrupts::new()?;

    let mut signal = std::pin::pin!(terminate_signal());
    let swarm = session.swarm().clone();
    let mut fatal = std::pin::pin!(swarm.failed());
    let end = loop {
        tokio::select! {
            error = &mut fatal => break End::Fatal(error),
            error = companion_failed(companion) => break End::Companion(error),
            line = line_rx.recv() => {
                let Some(line) = line else { break End::Input };
                let line = line.trim().to_string();
                if is_quit(&line) {
                    break End::Input;
                }
                let answer = if line.is_empty() || line.starts_with('#') {
                    None
                } else {
                    let answer = tokio::select! {
                        answer = session.run(&line) => answer,
                        _ = interrupts.recv() => interrupted(&line),
                        _ = &mut signal => break End::Signal,
                    };
                    *names.lock() = names_of(session.swarm()).await;
                    Some(output.answer(&answer))
                };
                let mut text: Vec<String> = pending_events(&mut events, output);
                text.extend(answer);
                if done_tx.send(text.join("\n")).is_err() {
                    break End::Input;
                }
            }
            // At the prompt the Ctrl-C key is no signal (the editor holds the terminal raw and clears the line), so
            // a SIGINT here was sent to the process: it stops the swarm, as in every other mode.
            _ = interrupts.recv() => break End::Signal,
            _ = &mut signal => break End::Signal,
        }
    };
    drop(done_tx);
    // The editor thread ends when it sees `done_tx` gone or reads end of input; it is not joined when a signal
    // arrives while it is blocked reading the terminal, because the process is about to exit anyway.
    if matches!(end, End::Input) {
        let _ = tokio::task::spawn_blocking(move || editor.join()).await;
    }
    drop(terminal);
    // The pipe and the editor keep their own notion of "fatal"; a signal is a signal wherever it arrives.
    Ok(end)
}

/// The events that arrived since the last look, as lines.
fn pending_events(events: &mut EventReceiver, output: &Output) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => lines.extend(output.event(&event)),
            Err(TryRecvError::Lagged(missed)) => lines.push(lagged(output, missed)),
            Err(_) => return lines,
        }
    }
}

/// SIGINT, caught (a console on a terminal never dies of it).
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn new() -> anyhow::Result<Interrupts> {
        Ok(Interrupts {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("catching SIGINT")?,
        })
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The answer to a command stopped by Ctrl-C.
fn interrupted(line: &str) -> Answer {
    Answer {
        command: line
            .trim_start_matches('/')
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
        result: Err(CommandError {
            kind: "interrupted".to_string(),
            message: "stopped by Ctrl-C; what the command had already done stays done (a sent message stays accepted: /history shows it)".to_string(),
        }),
    }
}

/// The terminal's settings when the console started, put back when it ends.
struct SavedTerminal {
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl SavedTerminal {
    fn save() -> SavedTerminal {
        SavedTerminal {
            #[cfg(unix)]
            saved: nix::sys::termios::tcgetattr(std::io::stdin()).ok(),
        }
    }
}

impl Drop for SavedTerminal {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSADRAIN,
                saved,
            );
        }
    }
}

fn editor_thread(
    history: PathBuf,
    names: Arc<Mutex<Names>>,
    lines: mpsc::Sender<String>,
    done: std::sync::mpsc::Receiver<String>,
    ready: oneshot::Sender<()>,
) {
    let mut editor =
        match rustyline::Editor::<ConsoleHelper, rustyline::history::DefaultHistory>::new() {
            Ok(editor) => editor,
            Err(err) => {
                tracing::error!(error = %err, "cannot start the line editor");
                return;
            }
        };
    let _ = ready.send(());
    editor.set_helper(Some(ConsoleHelper { names }));
    let _ = editor.load_history(&history);
    loop {
        match editor.readline("dreamos> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if lines.blocking_send(line).is_err() {
                    break;
                }
                match done.recv() {
                    Ok(answer) if answer.is_empty() => {}
                    Ok(answer) => {
                        let _ = writeln!(std::io::stdout(), "{answer}");
                    }
                    Err(_) => break,
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "(Ctrl-C clears the line; /quit or Ctrl-D leaves)"
                );
            }
            // A byte that is not UTF-8 (a Latin-1 key, a paste) ends only that line, never the session.
            Err(rustyline::error::ReadlineError::Io(err))
                if err.kind() == std::io::ErrorKind::InvalidData =>
            {
                let _ = writeln!(
                    std::io::stdout(),
                    "error (invalid_input): that line was not valid UTF-8; it was not run"
                );
            }
            Err(rustyline::error::ReadlineError::Signal(_)) => {}
            Err(_) => break,
        }
    }
    if let Err(err) = editor.save_history(&history) {
        tracing::debug!(error = %err, "could not save console history");
    }
}

/// Completes command names, subcommands, options and their values, as the command table declares them.
struct ConsoleHelper {
    names: Arc<Mutex<Names>>,
}

impl rustyline::completion::Completer for ConsoleHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let names = self.names.lock().clone();
        Ok(complete(&line[..pos], &names))
    }
}

impl rustyline::hint::Hinter for ConsoleHelper {
    type Hint = String;
}

impl rustyline::highlight::Highlighter for ConsoleHelper {}

impl rustyline::validate::Validator for ConsoleHelper {}

impl rustyline::Helper for ConsoleHelper {}
