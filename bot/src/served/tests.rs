//! The swarm's side of the tools' socket against a real index in a temporary directory, spoken to frame by frame.

use std::{
    io::Write,
    os::unix::net::UnixStream,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use dreamos_runtime::Config;
use dreamos_scanner::{CodeIndex, IndexOptions};

use super::{read_frame, Ask, Request, Server, MAX_ANSWERING, MAX_REQUEST, SOCKET, TOOL_NAMES};
use crate::code_cli::{ListArgs, SearchArgs, Tool};

/// Fields drop in order: the server stops before its directory goes.
pub(crate) struct Fixture {
    server: Option<Server>,
    index: CodeIndex,
    pub(crate) dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("src")).expect("mkdir");
        std::fs::write(
            repo.join("src/lib.rs"),
            "pub fn tide_table() {}\nfn calls() { tide_table(); }\n",
        )
        .expect("write");
        let index = CodeIndex::open_owned(&dir.path().join("index"), dir.path()).expect("open");
        index
            .index_repo("shore", &repo, &IndexOptions::default(), &|_| {})
            .expect("index");
        let server =
            Server::start(dir.path(), index.clone(), Arc::new(Config::defaults())).expect("start");
        Fixture {
            server: Some(server),
            index,
            dir,
        }
    }

    pub(crate) fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join(SOCKET)
    }

    /// Sends `body` as a question and reads every frame of the answer.
    fn ask_raw(&self, len: u32, body: &[u8]) -> Vec<(u8, String)> {
        let mut stream = UnixStream::connect(self.socket()).expect("connect");
        let mut message = len.to_le_bytes().to_vec();
        message.extend_from_slice(body);
        // A refusal may close the connection before the question is written: what matters is the answer.
        let _ = stream.write_all(&message);
        frames(&mut stream)
    }

    fn ask(&self, version: &str, tool: Tool) -> Vec<(u8, String)> {
        self.ask_for(version, Ask::Tool(tool))
    }

    fn ask_for(&self, version: &str, ask: Ask) -> Vec<(u8, String)> {
        let request = Request {
            version: version.to_string(),
            cwd: self.dir.path().to_path_buf(),
            ask,
        };
        let body = serde_json::to_vec(&request).expect("encode");
        self.ask_raw(body.len() as u32, &body)
    }
}

/// Every frame until the end of the stream. A connection closed with the question unread ends in ECONNRESET
/// rather than the end of the stream, after the frames sent before it.
fn frames(stream: &mut UnixStream) -> Vec<(u8, String)> {
    let mut all = Vec::new();
    loop {
        match read_frame(stream) {
            Ok(Some((kind, bytes))) => all.push((kind, String::from_utf8(bytes).expect("utf-8"))),
            Ok(None) => return all,
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(err) => panic!("reading a frame after {all:?}: {err}"),
        }
    }
}

fn search(query: &str) -> Tool {
    Tool::Search(SearchArgs {
        query: query.to_string(),
        lang: None,
        path: None,
        repo: None,
        limit: None,
        json: false,
    })
}

/// The text of the frames of one kind.
fn of_kind(frames: &[(u8, String)], kind: u8) -> String {
    frames
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, text)| text.as_str())
        .collect()
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn answers_end_with_the_exit_code_and_errors_read_as_alone() {
    let fixture = Fixture::new();
    let answer = fixture.ask(VERSION, search("tide_table"));
    assert_eq!(answer.last(), Some(&(b'x', "\0".to_string())), "{answer:?}");
    assert!(
        of_kind(&answer, b'o').contains("src/lib.rs:1"),
        "{answer:?}"
    );
    let answer = fixture.ask(VERSION, search("nothing_of_the_kind_zz"));
    assert_eq!(of_kind(&answer, b'e'), "no matches\n");
    assert_eq!(answer.last(), Some(&(b'x', "\0".to_string())));
    let answer = fixture.ask(VERSION, search("/unclosed"));
    assert!(
        of_kind(&answer, b'e').starts_with("error: ") && of_kind(&answer, b'e').contains("regex"),
        "{answer:?}"
    );
    assert_eq!(answer.last(), Some(&(b'x', "\u{1}".to_string())));
    let answer = fixture.ask(
        VERSION,
        Tool::Repos(ListArgs {
            repo: None,
            json: true,
        }),
    );
    assert!(of_kind(&answer, b'o').contains("\"shore\""), "{answer:?}");
}

#[test]
fn malformed_oversized_and_foreign_questions_are_refused() {
    let fixture = Fixture::new();
    let refused = |answer: Vec<(u8, String)>, says: &str| {
        assert_eq!(answer.len(), 1, "{answer:?}");
        assert_eq!(answer[0].0, b'r');
        assert!(answer[0].1.contains(says), "{answer:?}");
    };
    refused(fixture.ask_raw(9, b"not json!"), "cannot be read");
    refused(fixture.ask_raw(MAX_REQUEST + 1, b""), "at most");
    refused(fixture.ask_raw(u32::MAX, b""), "at most");
    refused(
        fixture.ask("0.0.0-other", search("tide_table")),
        "the swarm runs",
    );
    // Still answering after all of that.
    let answer = fixture.ask(VERSION, search("tide_table"));
    assert_eq!(answer.last(), Some(&(b'x', "\0".to_string())), "{answer:?}");
}

#[test]
fn more_questions_at_once_than_answered_are_refused_not_queued() {
    let fixture = Fixture::new();
    // Connections that never ask hold an answering thread each until the question's timeout.
    let held: Vec<UnixStream> = (0..MAX_ANSWERING)
        .map(|_| UnixStream::connect(fixture.socket()).expect("connect"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The held connections are counted as they are accepted, in order, before this one.
        let answer = fixture.ask(VERSION, search("tide_table"));
        if answer.first().map(|f| f.0) == Some(b'r') {
            assert!(answer[0].1.starts_with("busy"), "{answer:?}");
            break;
        }
        assert!(Instant::now() < deadline, "never refused: {answer:?}");
    }
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = fixture.ask(VERSION, search("tide_table"));
        if answer.last() == Some(&(b'x', "\0".to_string())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never answered again: {answer:?}"
        );
        std::thread::yield_now();
    }
}

/// As many askers at once as questions are answered, asking again and again: every question is answered, none
/// refused as busy.
#[test]
fn as_many_askers_as_answers_are_never_refused() {
    let fixture = Fixture::new();
    std::thread::scope(|scope| {
        let askers: Vec<_> = (0..MAX_ANSWERING)
            .map(|_| {
                scope.spawn(|| {
                    (0..25)
                        .map(|_| fixture.ask(VERSION, search("tide_table")))
                        .filter(|answer| answer.last() != Some(&(b'x', "\0".to_string())))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for asker in askers {
            let unanswered = asker.join().expect("asker");
            assert!(unanswered.is_empty(), "{unanswered:?}");
        }
    });
}

#[test]
fn stopping_removes_the_socket_and_a_stale_one_is_replaced() {
    let mut fixture = Fixture::new();
    assert!(fixture.socket().exists());
    fixture.server.take().expect("server").stop();
    assert!(!fixture.socket().exists());
    // A socket file nobody listens on, as a killed swarm leaves it.
    drop(std::os::unix::net::UnixListener::bind(fixture.socket()).expect("bind"));
    assert!(fixture.socket().exists());
    let server = Server::start(
        fixture.dir.path(),
        fixture.index.clone(),
        Arc::new(Config::defaults()),
    )
    .expect("start over a stale socket");
    let answer = fixture.ask(VERSION, search("tide_table"));
    assert_eq!(answer.last(), Some(&(b'x', "\0".to_string())), "{answer:?}");
    // A second server on the same directory does not steal the socket.
    let err = Server::start(
        fixture.dir.path(),
        fixture.index.clone(),
        Arc::new(Config::defaults()),
    )
    .err()
    .expect("a second server");
    assert!(format!("{err:#}").contains("answers at"), "{err:#}");
    drop(server);
    assert!(!Path::new(&fixture.socket()).exists());
    // Stopping does not need the socket's file: a server whose file was removed stops too.
    let server = Server::start(
        fixture.dir.path(),
        fixture.index.clone(),
        Arc::new(Config::defaults()),
    )
    .expect("start");
    std::fs::remove_file(fixture.socket()).expect("remove the socket's file");
    server.stop();
}

#[test]
fn a_frame_longer_than_any_sent_is_an_error_not_an_allocation() {
    let mut huge: &[u8] = &[b'o', 0xff, 0xff, 0xff, 0xff];
    let err = read_frame(&mut huge).expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let mut cut: &[u8] = &[b'o', 3, 0, 0];
    assert!(read_frame(&mut cut).is_err());
    let mut short: &[u8] = &[b'o', 3, 0, 0, 0, b'a'];
    assert!(read_frame(&mut short).is_err());
    let mut empty: &[u8] = &[];
    assert!(matches!(read_frame(&mut empty), Ok(None)));
    let mut whole: &[u8] = &[b'x', 1, 0, 0, 0, 0];
    assert_eq!(
        read_frame(&mut whole).expect("frame"),
        Some((b'x', vec![0]))
    );
}

#[test]
fn a_command_line_is_answered_as_the_tool_it_names_and_anything_else_refused() {
    let fixture = Fixture::new();
    let line = |words: &[&str]| -> Vec<(u8, String)> {
        fixture.ask_for(
            VERSION,
            Ask::Line(words.iter().map(|w| w.to_string()).collect()),
        )
    };
    assert_eq!(
        line(&["search", "tide_table", "--limit", "1"]),
        fixture.ask(
            VERSION,
            Tool::Search(SearchArgs {
                query: "tide_table".to_string(),
                lang: None,
                path: None,
                repo: None,
                limit: Some("1".to_string()),
                json: false,
            })
        )
    );
    let answer = line(&["repos", "--json"]);
    assert!(of_kind(&answer, b'o').contains("\"shore\""), "{answer:?}");
    // An error of the tool's own is answered, as alone.
    let answer = line(&["search", "/unclosed"]);
    assert_eq!(
        answer.last(),
        Some(&(b'x', "\u{1}".to_string())),
        "{answer:?}"
    );
    let answer = line(&["symbol", "x", "--kind", "nonsense"]);
    assert!(
        of_kind(&answer, b'e').contains("unknown --kind"),
        "{answer:?}"
    );
    assert_eq!(
        answer.last(),
        Some(&(b'x', "\u{1}".to_string())),
        "{answer:?}"
    );
    // What the tool's process must read itself: not a tool, its own configuration or data directory, help, a
    // malformed line.
    for words in [
        &["run"][..],
        &["index", "."],
        &["search", "x", "--config", "other.toml"],
        &["--data-dir", "elsewhere", "repos"],
        &["search", "--help"],
        &["--version"],
        &["search", "x", "--no-such-option"],
        &["search"],
        &["searchh", "x"],
        &[],
    ] {
        let answer = line(words);
        assert_eq!(answer.len(), 1, "{words:?}: {answer:?}");
        assert_eq!(answer[0].0, b'r', "{words:?}: {answer:?}");
    }
}

#[test]
fn the_tool_names_are_the_command_lines_tools() {
    let mut defined: Vec<String> = <crate::cli::Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .filter(|command| {
            let mut line = vec!["dreamos".to_string(), command.get_name().to_string()];
            // Enough for every tool to parse: each takes at most one positional argument.
            if !matches!(command.get_name(), "symbols" | "repos") {
                line.push("x".to_string());
            }
            matches!(
                <crate::cli::Cli as clap::Parser>::try_parse_from(line).map(|cli| cli.command),
                Ok(crate::cli::Command::Tool(_))
            )
        })
        .map(|command| {
            assert_eq!(
                command.get_all_aliases().count(),
                0,
                "{}: an alias would need its name in TOOL_NAMES",
                command.get_name()
            );
            command.get_name().to_string()
        })
        .collect();
    defined.sort();
    let mut listed: Vec<String> = TOOL_NAMES.iter().map(|n| n.to_string()).collect();
    listed.sort();
    assert_eq!(listed, defined);
}
