//! The Discord frontend end to end: the built `dreamos` binary with the real serenity client, against the fake
//! Discord of `dreamos_tests::fake_discord` on 127.0.0.1. Every command as a slash command, roles, autocomplete,
//! deferral, live broadcast acknowledgements, the durable outbox across `kill -9`, the log mirror, and tasks (ids that
//! autocomplete, Approve / Reject buttons, answers edited as their task moves).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use dreamos_tests::{
    fake_discord::{
        focused, focused_integer, opts, sub, FakeDiscord, Member, APPLICATION_ID, CHANNEL_ID,
        GUILD_ID,
    },
    Console,
};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);
/// A canary: it must never appear in anything dreamos sends to Discord but the Authorization header.
const TOKEN: &str = "canary-token-5b1e8c2f9d";
const EVENTS_CHANNEL: u64 = 4444;
const LOG_CHANNEL: u64 = 7777;
const CAPTAIN_ROLE: u64 = 6001;
const OPERATOR_ROLE: u64 = 6002;
const VIEWER_ROLE: u64 = 6003;

fn captain() -> Member {
    Member::new(5000, "cora", &[CAPTAIN_ROLE])
}
fn operator() -> Member {
    Member::new(5002, "otto", &[OPERATOR_ROLE])
}
fn viewer() -> Member {
    Member::new(5003, "vera", &[VIEWER_ROLE])
}
fn nobody() -> Member {
    Member::new(5004, "nemo", &[])
}

/// `dreamos run --console --json` with the Discord frontend pointed at the fake.
fn start(fake: &FakeDiscord, data: &Path, root: &Path) -> Console {
    start_with(fake, data, root, &["--console"])
}

fn start_with(fake: &FakeDiscord, data: &Path, root: &Path, args: &[&str]) -> Console {
    start_with_env(fake, data, root, args, &[])
}

fn start_with_env(
    fake: &FakeDiscord,
    data: &Path,
    root: &Path,
    args: &[&str],
    extra: &[(&str, &str)],
) -> Console {
    let roots = format!("[\"{}\"]", root.display());
    let routes = format!("[{{ level = \"warn\", target = \"\", channel_id = {LOG_CHANNEL} }}]");
    let env = [
        ("DISCORD_TOKEN", TOKEN),
        ("DREAMOS_DISCORD__API_URL", fake.base_url.as_str()),
        ("DREAMOS_DISCORD__GUILD_IDS", "[3000]"),
        ("DREAMOS_DISCORD__CAPTAIN_ROLE_IDS", "[6001]"),
        ("DREAMOS_DISCORD__OPERATOR_ROLE_IDS", "[\"6002\"]"),
        ("DREAMOS_DISCORD__VIEWER_ROLE_IDS", "[6003]"),
        ("DREAMOS_DISCORD__EVENTS_CHANNEL_ID", "4444"),
        ("DREAMOS_DISCORD__LOG_ROUTES", routes.as_str()),
        ("DREAMOS_DEBUG__FAULT_SKILL", "true"),
        ("DREAMOS_SCANNER__ALLOWED_ROOTS", roots.as_str()),
        ("NO_PROXY", "127.0.0.1,localhost"),
    ];
    let env: Vec<(&str, &str)> = env.iter().chain(extra).copied().collect();
    let before = fake.identifies().len();
    let console = Console::start(data, args, &env);
    fake.wait_identified(before + 1, T);
    console
}

/// A repository to index.
fn repo(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("src")).expect("repo");
    std::fs::write(
        repo.join("src/lib.rs"),
        "mod util;\n/// Parses the configuration.\npub fn parse_config(text: &str) -> usize {\n    text.len()\n}\n",
    )
    .expect("lib.rs");
    std::fs::write(repo.join("src/util.rs"), "pub struct Helper;\n").expect("util.rs");
    repo
}

/// The first response of an interaction: (callback type, data).
fn response(fake: &FakeDiscord, token: &str) -> (u64, Value) {
    let callback = fake.callback(token, T);
    (
        callback.body["type"].as_u64().unwrap_or(0),
        callback.body["data"].clone(),
    )
}

/// Runs a command and returns its answer's content (and any attached file's text after it), whether it came at
/// once or by an edit after a deferral.
fn answer(fake: &FakeDiscord, member: &Member, command: &str, options: Value) -> (String, bool) {
    let token = fake.command(member, command, options);
    let callback = fake.callback(&token, T);
    let (kind, data) = (
        callback.body["type"].as_u64().unwrap_or(0),
        callback.body["data"].clone(),
    );
    let ephemeral = data["flags"].as_u64().unwrap_or(0) & 64 != 0;
    let content = match kind {
        4 => {
            let mut text = data["content"].as_str().unwrap_or_default().to_string();
            for (_, file) in &callback.files {
                text.push('\n');
                text.push_str(file);
            }
            text
        }
        5 => {
            let done = fake.wait_response(&token, T, |r| {
                r["content"].as_str().is_some_and(|c| !c.starts_with("⏳"))
            });
            let mut text = done["content"].as_str().unwrap_or_default().to_string();
            for file in done["files"].as_array().into_iter().flatten() {
                text.push('\n');
                text.push_str(file["text"].as_str().unwrap_or_default());
            }
            text
        }
        other => panic!("/{command}: callback type {other}: {data}"),
    };
    // Nothing we send may ping anyone.
    let mentions = &data["allowed_mentions"];
    if kind == 4 {
        assert_eq!(mentions["parse"], json!([]), "/{command}: {data}");
    }
    (content, ephemeral)
}

fn ok(fake: &FakeDiscord, member: &Member, command: &str, options: Value) -> String {
    let (content, ephemeral) = answer(fake, member, command, options);
    assert!(
        !ephemeral && !content.starts_with("**Refused**"),
        "/{command} was refused: {content}"
    );
    content
}

fn refused(fake: &FakeDiscord, member: &Member, command: &str, options: Value) -> String {
    let (content, ephemeral) = answer(fake, member, command, options);
    assert!(ephemeral, "/{command}: a refusal is ephemeral: {content}");
    assert!(content.starts_with("**Refused**"), "/{command}: {content}");
    content
}

#[test]
fn every_command_works_as_a_slash_command_and_roles_are_enforced() {
    let fake = FakeDiscord::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = repo(dir.path());
    let data_dir = dir.path().join("data");
    let mut console = start(&fake, &data_dir, dir.path());

    // Registration: the table's payload, in the configured guild, with the token only in the header.
    let put = fake.wait_request("the registration", T, |r| {
        r.method == "PUT" && r.path == format!("/applications/1000/guilds/{GUILD_ID}/commands")
    });
    let names: Vec<&str> = put
        .body
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names.len(), 23, "{names:?}");
    assert!(names.contains(&"send") && names.contains(&"agent") && names.contains(&"task"));
    assert_eq!(
        put.authorization.as_deref(),
        Some(format!("Bot {TOKEN}").as_str())
    );
    assert_eq!(fake.identifies()[0]["token"], format!("Bot {TOKEN}"));

    let cap = captain();
    // The list of commands is longer than 2000 characters: it comes as a file under a summary.
    let help = ok(&fake, &cap, "help", json!([]));
    assert!(
        help.starts_with("/help: ") && help.contains("/send AGENT TEXT"),
        "{help}"
    );
    let status = ok(&fake, &cap, "status", json!([]));
    assert!(
        status.starts_with("```") && status.contains("agent-4"),
        "{status}"
    );
    assert!(ok(&fake, &cap, "agents", json!([])).contains("crew"));

    // /send answers once accepted; the reply is posted to the channel by the outbox, pinging nobody.
    let sent = ok(
        &fake,
        &cap,
        "send",
        opts(&[("agent", json!("agent-1")), ("text", json!("hello there"))]),
    );
    assert!(sent.starts_with("accepted #"), "{sent}");
    let posted = fake.wait_channel_message(CHANNEL_ID, T, |m| {
        m["content"]
            .as_str()
            .is_some_and(|c| c.contains("pong: hello there"))
    });
    assert!(
        posted["content"]
            .as_str()
            .unwrap_or_default()
            .contains("<@5000>"),
        "{posted}"
    );
    let post = fake.wait_request("the reply's post", T, |r| {
        r.path == format!("/channels/{CHANNEL_ID}/messages")
            && r.body["content"] == posted["content"]
    });
    assert_eq!(post.body["allowed_mentions"], json!({ "parse": [] }));
    assert_eq!(post.body["enforce_nonce"], json!(true));
    assert_eq!(post.body["nonce"].as_str().map(str::len), Some(25));

    // With wait the reply is in the answer, and not posted again.
    let waited = ok(
        &fake,
        &cap,
        "send",
        opts(&[
            ("agent", json!("agent-2")),
            ("text", json!("inline please")),
            ("wait", json!(true)),
        ]),
    );
    assert!(waited.contains("pong: inline please"), "{waited}");
    ok(
        &fake,
        &cap,
        "send",
        opts(&[
            ("agent", json!("agent-2")),
            ("text", json!("after the inline one")),
        ]),
    );
    fake.wait_channel_message(CHANNEL_ID, T, |m| {
        m["content"]
            .as_str()
            .is_some_and(|c| c.contains("after the inline one"))
    });
    assert!(
        !fake.channel(CHANNEL_ID).iter().any(|m| m["content"]
            .as_str()
            .is_some_and(|c| c.contains("inline please"))),
        "a reply shown in the interaction is not posted again"
    );

    // A broadcast edits its answer as agents acknowledge it.
    let token = fake.command(&cap, "broadcast", opts(&[("text", json!("all hands"))]));
    let (kind, data) = response(&fake, &token);
    assert_eq!(kind, 4, "{data}");
    assert!(
        data["content"]
            .as_str()
            .unwrap_or_default()
            .starts_with("order #"),
        "{data}"
    );
    fake.wait_response(&token, T, |r| {
        r["content"]
            .as_str()
            .is_some_and(|c| c.contains("4/4 agents acknowledged"))
    });

    let history = ok(
        &fake,
        &cap,
        "history",
        opts(&[("limit", json!(3)), ("kind", json!("ping"))]),
    );
    assert!(history.contains("ping"), "{history}");
    assert!(ok(&fake, &cap, "deadletters", json!([])).contains("no dead letters"));

    // Agent lifecycle through subcommands.
    let spawned = ok(
        &fake,
        &cap,
        "agent",
        sub(
            "spawn",
            opts(&[("name", json!("agent-9")), ("skills", json!("ping"))]),
        ),
    );
    assert!(spawned.contains("spawn agent-9"), "{spawned}");
    assert!(ok(
        &fake,
        &cap,
        "agent",
        sub("pause", opts(&[("name", json!("agent-9"))]))
    )
    .contains("paused"));
    ok(
        &fake,
        &cap,
        "agent",
        sub("resume", opts(&[("name", json!("agent-9"))])),
    );
    ok(
        &fake,
        &cap,
        "agent",
        sub("restart", opts(&[("name", json!("agent-9"))])),
    );
    assert!(ok(
        &fake,
        &cap,
        "agent",
        sub("stop", opts(&[("name", json!("agent-9"))]))
    )
    .contains("stopped"));

    // The code commands.
    let indexed = ok(
        &fake,
        &cap,
        "index",
        opts(&[
            ("path", json!(repo.to_str().expect("utf-8"))),
            ("name", json!("demo")),
            ("wait", json!(true)),
        ]),
    );
    assert!(indexed.starts_with("indexed demo: 2 files"), "{indexed}");
    assert!(ok(
        &fake,
        &cap,
        "search",
        opts(&[("query", json!("parse_config"))])
    )
    .contains("src/lib.rs"));
    assert!(ok(
        &fake,
        &cap,
        "symbol",
        opts(&[("name", json!("Helper")), ("kind", json!("struct"))])
    )
    .contains("src/util.rs"));
    assert!(ok(
        &fake,
        &cap,
        "outline",
        opts(&[("file", json!("src/lib.rs")), ("repo", json!("demo"))])
    )
    .contains("parse_config"));
    assert!(ok(
        &fake,
        &cap,
        "deps",
        opts(&[("file", json!("src/lib.rs")), ("repo", json!("demo"))])
    )
    .contains("src/util.rs"));
    assert!(ok(&fake, &cap, "refs", opts(&[("name", json!("Helper"))])).contains("src/util.rs"));
    assert!(ok(
        &fake,
        &cap,
        "impact",
        opts(&[
            ("target", json!("src/util.rs")),
            ("repo", json!("demo")),
            ("depth", json!(1))
        ])
    )
    .contains("src/lib.rs"));
    assert!(ok(&fake, &cap, "repos", json!([])).contains("demo"));

    // Dreamscribe: an operator remembers (kind, tags), a viewer recalls and pages the journal, a captain forgets.
    let remembered = ok(
        &fake,
        &operator(),
        "remember",
        opts(&[
            (
                "text",
                json!("We moved the nightly backup to 02:00 UTC because of the EU traffic peak"),
            ),
            ("kind", json!("decision")),
            ("tags", json!("backup,ops")),
        ]),
    );
    assert!(remembered.starts_with("remembered "), "{remembered}");
    let entry_id = remembered
        .split_whitespace()
        .nth(1)
        .expect("the entry's id")
        .to_string();
    let recalled = ok(
        &fake,
        &viewer(),
        "recall",
        opts(&[("query", json!("backup schedul peak"))]),
    );
    assert!(
        recalled.contains(&entry_id)
            && recalled.contains("**backup**")
            && recalled.contains("[backup, ops]"),
        "{recalled}"
    );
    let filtered = ok(
        &fake,
        &viewer(),
        "recall",
        opts(&[("query", json!("backup")), ("kind", json!("fact"))]),
    );
    assert!(filtered.contains("nothing in memory matches"), "{filtered}");
    let journal = ok(&fake, &viewer(), "journal", opts(&[("limit", json!(50))]));
    assert!(
        journal.contains(&entry_id) && journal.contains("by swarm"),
        "{journal}"
    );
    let bad_tags = refused(
        &fake,
        &operator(),
        "remember",
        opts(&[("text", json!("x")), ("tags", json!("Not A Tag"))]),
    );
    assert!(bad_tags.contains("not a valid tag"), "{bad_tags}");
    assert!(
        refused(&fake, &viewer(), "remember", opts(&[("text", json!("x"))]))
            .contains("needs the operator role")
    );
    assert!(refused(
        &fake,
        &operator(),
        "forget",
        opts(&[("id", json!(entry_id))])
    )
    .contains("needs the captain role"));
    assert!(ok(&fake, &cap, "forget", opts(&[("id", json!(entry_id))])).starts_with("forgot "));
    assert!(!ok(
        &fake,
        &viewer(),
        "recall",
        opts(&[("query", json!("backup"))])
    )
    .contains(&entry_id));

    // Bad options get the console's errors.
    let bad = refused(&fake, &cap, "history", opts(&[("limit", json!(0))]));
    assert!(bad.contains("between 1 and 1000"), "{bad}");

    // Roles: captain- and operator-only commands are refused, ephemerally, naming the role.
    let captain_only: Vec<(&str, Value)> = vec![
        ("broadcast", opts(&[("text", json!("no"))])),
        (
            "index",
            opts(&[("path", json!(repo.to_str().expect("utf-8")))]),
        ),
        ("agent", sub("spawn", opts(&[("name", json!("agent-8"))]))),
        ("agent", sub("stop", opts(&[("name", json!("agent-1"))]))),
        ("agent", sub("restart", opts(&[("name", json!("agent-1"))]))),
        ("agent", sub("pause", opts(&[("name", json!("agent-1"))]))),
        ("agent", sub("resume", opts(&[("name", json!("agent-1"))]))),
        ("agent", sub("purge", opts(&[("name", json!("agent-1"))]))),
    ];
    let operator_only: Vec<(&str, Value)> = vec![(
        "send",
        opts(&[("agent", json!("agent-1")), ("text", json!("hi"))]),
    )];
    for member in [viewer(), nobody()] {
        for (command, options) in captain_only.iter().chain(&operator_only) {
            let refusal = refused(&fake, &member, command, options.clone());
            let role = if operator_only.iter().any(|(c, _)| c == command) {
                "operator"
            } else {
                "captain"
            };
            assert!(
                refusal.contains(&format!("needs the {role} role")),
                "/{command} for {}: {refusal}",
                member.name
            );
        }
    }
    for (command, options) in &captain_only {
        let refusal = refused(&fake, &operator(), command, options.clone());
        assert!(refusal.contains("needs the captain role"), "{refusal}");
    }
    // A viewer may look; a member with no role may only ask for help.
    ok(&fake, &viewer(), "status", json!([]));
    assert!(refused(&fake, &nobody(), "status", json!([])).contains("none of the swarm's roles"));
    ok(&fake, &nobody(), "help", json!([]));
    ok(
        &fake,
        &operator(),
        "send",
        opts(&[
            ("agent", json!("agent-1")),
            ("text", json!("from an operator")),
        ]),
    );

    // Autocomplete offers agent names.
    let token = fake.autocomplete(&cap, "send", focused("agent", "agent-"));
    let (kind, data) = response(&fake, &token);
    assert_eq!(kind, 8, "{data}");
    let choices: Vec<&str> = data["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .filter_map(|c| c["value"].as_str())
        .collect();
    assert!(
        choices.contains(&"agent-1") && choices.contains(&"agent-9"),
        "{choices:?}"
    );

    // The token never left in a body.
    for request in fake.requests() {
        assert!(
            !request.body.to_string().contains(TOKEN),
            "{} {}",
            request.method,
            request.path
        );
    }
    console.close_stdin();
    let rest = console.finish();
    drop(rest);

    // Every Discord command was audited with the Discord user's id, the denied ones too.
    let store = dreamos_runtime::Store::open(&data_dir).expect("store");
    let audit = dreamos_runtime::audit::AuditLog::open(&store).expect("audit");
    let entries = audit.recent(1000).expect("audit");
    let denied = entries
        .iter()
        .find(|e| {
            e.frontend == "discord"
                && e.who.contains("(5003)")
                && e.command.starts_with("/broadcast")
        })
        .expect("the viewer's denied broadcast is audited");
    assert!(
        matches!(&denied.outcome, dreamos_runtime::audit::AuditOutcome::Error { kind, .. } if kind == "forbidden")
    );
    assert!(entries
        .iter()
        .any(|e| e.command == "/send agent-1 \"hello there\"" && e.who.contains("(5000)")));
    assert!(!entries
        .iter()
        .any(|e| e.command.contains(TOKEN) || e.who.contains(TOKEN)));
}

#[test]
fn a_slow_command_is_deferred_within_three_seconds_and_completed_by_an_edit() {
    let fake = FakeDiscord::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = start(&fake, &dir.path().join("data"), dir.path());
    let sent_at = Instant::now();
    let token = fake.command(
        &captain(),
        "send",
        opts(&[
            ("agent", json!("agent-1")),
            ("text", json!("sleep 3000")),
            ("kind", json!("fault")),
            ("wait", json!(true)),
        ]),
    );
    let callback = fake.callback(&token, T);
    let deferred_after = callback.at.duration_since(sent_at);
    assert_eq!(callback.body["type"], 5, "deferred: {}", callback.body);
    eprintln!("discord: deferred {deferred_after:?} after the interaction was dispatched");
    assert!(
        deferred_after < Duration::from_secs(3),
        "{deferred_after:?}"
    );
    let done = fake.wait_response(&token, T, |r| {
        r["content"]
            .as_str()
            .is_some_and(|c| c.contains("slept 3000 ms"))
    });
    assert!(
        done["content"]
            .as_str()
            .unwrap_or_default()
            .contains("accepted #"),
        "{done}"
    );
    console.close_stdin();
    console.finish();
}

/// `/ask` on Discord: the answer is the ask task's message, edited with the answer's text as the model streams
/// it, and at the end with the whole answer and which model gave it. A second question in the same channel
/// carries the first turn.
#[test]
fn ask_streams_its_answer_into_the_edited_message() {
    use dreamos_tests::fake_openai::{self, FakeOpenAi, Reply};
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for the fake model");
    let model = runtime.block_on(FakeOpenAi::start());
    let pieces = ["The capital ", "of France ", "is Paris."];
    let mut events: Vec<Value> = pieces
        .iter()
        .map(|p| fake_openai::chunk(Some(p), None))
        .collect();
    events.push(fake_openai::chunk(None, Some("stop")));
    events.push(fake_openai::usage_chunk(30, 9));
    model.script([
        Reply::Stream {
            events: events.clone(),
            done: true,
            // Slow enough for the message to be edited between pieces (at most once a second).
            pause: Duration::from_millis(1_300),
        },
        Reply::Stream {
            events: vec![
                fake_openai::chunk(Some("About two million."), None),
                fake_openai::chunk(None, Some("stop")),
                fake_openai::usage_chunk(50, 4),
            ],
            done: true,
            pause: Duration::from_millis(5),
        },
    ]);
    let fake = FakeDiscord::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let llm = [
        ("DREAMOS_LLM__BASE_URL", model.base_url.as_str()),
        (
            "DREAMOS_LLM__MODELS",
            r#"[{name = "small", tags = ["fast", "balanced"], context = 4096}]"#,
        ),
    ];
    let mut console = start_with_env(
        &fake,
        &dir.path().join("data"),
        dir.path(),
        &["--console"],
        &llm,
    );
    let token = fake.command(
        &operator(),
        "ask",
        opts(&[("question", json!("What is the capital of France?"))]),
    );
    let (kind, first) = response(&fake, &token);
    assert_eq!(kind, 4, "{first}");
    assert!(
        content(&first).contains("asks: What is the capital of France?"),
        "{first}"
    );
    let done = fake.wait_response(&token, T, |r| {
        r["content"].as_str().is_some_and(|c| c.contains("— small"))
    });
    let text = done["content"].as_str().unwrap_or_default();
    assert!(text.contains("The capital of France is Paris."), "{text}");
    // Before the end, the message showed part of the answer: the stream, not only the result.
    let partial = fake.for_token(&token).into_iter().any(|r| {
        r.method == "PATCH"
            && r.body["content"]
                .as_str()
                .is_some_and(|c| c.contains("The capital ") && !c.contains("is Paris."))
    });
    assert!(
        partial,
        "no edit showed a part of the answer: {:?}",
        fake.for_token(&token)
    );

    let token = fake.command(
        &operator(),
        "ask",
        opts(&[("question", json!("How many people live there?"))]),
    );
    let done = fake.wait_response(&token, T, |r| {
        r["content"].as_str().is_some_and(|c| c.contains("— small"))
    });
    assert!(
        done["content"]
            .as_str()
            .unwrap_or_default()
            .contains("1 earlier turn"),
        "{done}"
    );
    let sent = model.received();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].body["messages"][2]["content"],
        "The capital of France is Paris."
    );
    console.close_stdin();
    console.finish();
}

#[test]
fn commands_are_registered_again_only_when_they_changed() {
    let fake = FakeDiscord::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let registrations =
        |fake: &FakeDiscord| fake.count(|r| r.method == "PUT" && r.path.ends_with("/commands"));
    let mut console = start(&fake, &data, dir.path());
    fake.wait_request("the registration", T, |r| r.method == "PUT");
    ok(&fake, &captain(), "status", json!([]));
    console.close_stdin();
    console.finish();
    assert_eq!(registrations(&fake), 1);

    let mut console = start(&fake, &data, dir.path());
    fake.wait_identified(2, T);
    // Answering a command proves setup (where registration happens) is over.
    ok(&fake, &captain(), "status", json!([]));
    assert_eq!(
        registrations(&fake),
        1,
        "the same payload is not registered twice"
    );
    console.close_stdin();
    console.finish();
}

#[test]
fn a_reply_committed_but_not_posted_is_posted_exactly_once_after_kill_9() {
    let fake = FakeDiscord::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let console = start(&fake, &data, dir.path());
    // Discord takes the post but never answers: the bot is killed while it waits, cursor not yet advanced.
    fake.hold_channel_posts(true);
    ok(
        &fake,
        &captain(),
        "send",
        opts(&[
            ("agent", json!("agent-3")),
            ("text", json!("survive the crash")),
        ]),
    );
    let first = fake.wait_request("the reply's first post", T, |r| {
        r.path == format!("/channels/{CHANNEL_ID}/messages")
            && r.body["content"]
                .as_str()
                .is_some_and(|c| c.contains("survive the crash"))
    });
    console.kill();
    fake.hold_channel_posts(false);

    let mut console = start(&fake, &data, dir.path());
    let posts_of = |fake: &FakeDiscord| {
        fake.count(|r| {
            r.path == format!("/channels/{CHANNEL_ID}/messages")
                && r.body["nonce"] == first.body["nonce"]
        })
    };
    let deadline = Instant::now() + T;
    while posts_of(&fake) < 2 {
        assert!(
            Instant::now() < deadline,
            "the reply was not posted again after the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The repeated post carried the same nonce, so the channel holds the reply once.
    let copies = fake
        .channel(CHANNEL_ID)
        .iter()
        .filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("survive the crash"))
        })
        .count();
    assert_eq!(copies, 1);
    // And once answered, the cursor moved: a later reply comes after it, and the crashed one is not posted a third time.
    ok(
        &fake,
        &captain(),
        "send",
        opts(&[
            ("agent", json!("agent-3")),
            ("text", json!("after the crash")),
        ]),
    );
    fake.wait_channel_message(CHANNEL_ID, T, |m| {
        m["content"]
            .as_str()
            .is_some_and(|c| c.contains("after the crash"))
    });
    assert_eq!(posts_of(&fake), 2);
    console.close_stdin();
    console.finish();
}

#[test]
fn notices_go_to_the_events_channel_and_warnings_to_the_log_channel_without_secrets() {
    let fake = FakeDiscord::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = start(&fake, &dir.path().join("data"), dir.path());
    // Three failed attempts: a dead letter, whose notice goes to the events channel; the failures log warnings.
    ok(
        &fake,
        &captain(),
        "send",
        opts(&[
            ("agent", json!("agent-2")),
            ("text", json!("fail")),
            ("kind", json!("fault")),
        ]),
    );
    let notice = fake.wait_channel_message(EVENTS_CHANNEL, T, |m| {
        m["content"]
            .as_str()
            .is_some_and(|c| c.contains("dead letters"))
    });
    assert!(
        notice["content"]
            .as_str()
            .unwrap_or_default()
            .contains("notice.dead_letter"),
        "{notice}"
    );
    // The dead letter was also a warning, which the log channel receives.
    let batch = fake.wait_channel_message(LOG_CHANNEL, T, |m| {
        m["content"]
            .as_str()
            .is_some_and(|c| c.contains("message moved to dead letters"))
    });
    let content = batch["content"].as_str().unwrap_or_default();
    assert!(
        content.starts_with("```") && content.ends_with("```"),
        "{content}"
    );
    assert!(content.chars().count() <= 2000);
    for message in fake.channel(LOG_CHANNEL) {
        let text = message["content"].as_str().unwrap_or_default();
        assert!(!text.contains(TOKEN), "the token was mirrored: {text}");
        for target in [
            "serenity",
            "poise",
            "reqwest",
            "hyper",
            "tungstenite",
            "rustls",
        ] {
            assert!(
                !text.contains(&format!(" {target}")),
                "a {target} line was mirrored: {text}"
            );
        }
    }
    console.close_stdin();
    console.finish();
}

#[test]
fn without_a_console_it_serves_until_sigterm_and_never_shows_the_token() {
    let fake = FakeDiscord::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut console = start_with(&fake, &data, dir.path(), &[]);
    // A service's stdin is /dev/null: the end of input does not stop it.
    console.close_stdin();
    ok(
        &fake,
        &captain(),
        "send",
        opts(&[
            ("agent", json!("agent-1")),
            ("text", json!("still serving")),
        ]),
    );
    fake.wait_channel_message(CHANNEL_ID, T, |m| {
        m["content"]
            .as_str()
            .is_some_and(|c| c.contains("pong: still serving"))
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &console.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = console.wait(Instant::now() + T);
    assert!(exit.success(), "exit status {exit}");
    let stderr = console.stderr();
    assert!(
        !stderr.contains(TOKEN),
        "the token reached stderr:\n{stderr}"
    );
    for entry in std::fs::read_dir(data.join("logs"))
        .expect("log files")
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(
            !text.contains(TOKEN),
            "the token reached {}",
            entry.path().display()
        );
    }
    // `dreamos config` has no place for it either.
    let (status, stdout, _) =
        dreamos_tests::run_dreamos(&["config"], &[("DISCORD_TOKEN", TOKEN)], "");
    assert!(status.success() && !stdout.contains(TOKEN) && stdout.contains("[discord]"));
}

/// The task id in an answer such as `created task 3 [queued] ping gated (ping, normal)`.
fn task_id(content: &str) -> u64 {
    content
        .split("task ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no task id in {content:?}"))
}

/// The custom ids of the buttons on a message (its `components`).
fn buttons(message: &Value) -> Vec<String> {
    message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().into_iter().flatten())
        .filter_map(|button| button["custom_id"].as_str().map(str::to_string))
        .collect()
}

/// `/task create` with these options: the interaction's token, the task's id and the answer's data.
fn create_task(
    fake: &FakeDiscord,
    member: &Member,
    options: &[(&str, Value)],
) -> (String, u64, Value) {
    let token = fake.command(member, "task", sub("create", opts(options)));
    let (kind, data) = response(fake, &token);
    assert_eq!(kind, 4, "{data}");
    let id = task_id(data["content"].as_str().unwrap_or_default());
    (token, id, data)
}

/// A click's response: (callback type, data, ephemeral).
fn click(fake: &FakeDiscord, member: &Member, custom_id: &str) -> (u64, Value, bool) {
    let token = fake.click(member, custom_id);
    let (kind, data) = response(fake, &token);
    let ephemeral = data["flags"].as_u64().unwrap_or(0) & 64 != 0;
    (kind, data, ephemeral)
}

fn content(data: &Value) -> &str {
    data["content"].as_str().unwrap_or_default()
}

/// Polls `/task show ID` until its answer shows the task `[state]` (or `[state ...]`).
fn wait_task(fake: &FakeDiscord, id: u64, state: &str) -> String {
    let deadline = Instant::now() + T;
    loop {
        let shown = ok(
            fake,
            &viewer(),
            "task",
            sub("show", opts(&[("id", json!(id))])),
        );
        if shown.contains(&format!("[{state}")) {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "task {id} is not {state}: {shown}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tasks_autocomplete_their_ids_carry_approval_buttons_and_edit_their_answer_as_they_move() {
    let fake = FakeDiscord::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let mut console = start(&fake, &data_dir, dir.path());
    let cap = captain();

    // A task's answer is edited as the task moves, at most once a second, until it shows the end.
    let (nap_token, nap, data) = create_task(
        &fake,
        &cap,
        &[
            ("skill", json!("steps")),
            ("args", json!(r#"{"steps": 4, "ms": 600}"#)),
            ("title", json!("nap")),
        ],
    );
    assert!(
        content(&data).starts_with(&format!("created task {nap} [")),
        "{data}"
    );
    assert!(buttons(&data).is_empty(), "{data}");
    let done = fake.wait_response(&nap_token, T, |r| content(r).contains("[done]"));
    assert!(
        content(&done).starts_with(&format!("created task {nap} [done] nap")),
        "{done}"
    );
    let original = format!("/webhooks/{APPLICATION_ID}/{nap_token}/messages/@original");
    let edits: Vec<_> = fake
        .for_token(&nap_token)
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path == original)
        .collect();
    assert!(!edits.is_empty());
    assert!(content(&edits[edits.len() - 1].body).contains("[done]"));
    // Its progress showed on the way.
    assert!(
        edits.iter().any(|e| content(&e.body).contains("%: step ")),
        "{:?}",
        edits.iter().map(|e| content(&e.body)).collect::<Vec<_>>()
    );
    assert_eq!(
        edits[edits.len() - 1].body["allowed_mentions"]["parse"],
        json!([])
    );
    for pair in edits.windows(2) {
        let apart = pair[1].at.duration_since(pair[0].at);
        // One second apart, give or take the network's jitter on 127.0.0.1.
        assert!(apart >= Duration::from_millis(900), "edits {apart:?} apart");
    }

    // A task that waits for approval is answered with Approve / Reject buttons.
    let (gated_token, gated, data) = create_task(
        &fake,
        &cap,
        &[
            ("skill", json!("ping")),
            ("args", json!("gated")),
            ("approve", json!(true)),
        ],
    );
    assert!(content(&data).contains("[waiting_approval]"), "{data}");
    assert_eq!(
        buttons(&data),
        [
            format!("task.approve.{gated}"),
            format!("task.reject.{gated}")
        ]
    );
    // So is /task show of it, for anyone who may look.
    let token = fake.command(
        &viewer(),
        "task",
        sub("show", opts(&[("id", json!(gated))])),
    );
    let (kind, data) = response(&fake, &token);
    assert_eq!(kind, 4, "{data}");
    assert_eq!(buttons(&data).len(), 2, "{data}");

    // Task ids autocomplete as integers, newest first; approve offers the waiting ones.
    let auto = fake.autocomplete(&cap, "task", sub("approve", focused_integer("id", "")));
    let (kind, data) = response(&fake, &auto);
    assert_eq!(kind, 8, "{data}");
    let choices = data["choices"].as_array().expect("choices").clone();
    assert_eq!(choices.len(), 1, "{data}");
    assert_eq!(choices[0]["value"], json!(gated), "an integer: {data}");
    assert_eq!(
        choices[0]["name"],
        json!(format!("{gated} · ping gated [waiting_approval]"))
    );
    let auto = fake.autocomplete(&cap, "task", sub("show", focused_integer("id", "")));
    let (_, data) = response(&fake, &auto);
    let values: Vec<u64> = data["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .filter_map(|c| c["value"].as_u64())
        .collect();
    assert_eq!(values, [gated, nap], "{data}");
    let auto = fake.autocomplete(&cap, "task", sub("show", focused_integer("id", "na")));
    let (_, data) = response(&fake, &auto);
    assert_eq!(data["choices"][0]["value"], json!(nap), "by title: {data}");
    // A member with no swarm role may not list tasks, so sees none of their titles.
    let auto = fake.autocomplete(&nobody(), "task", sub("show", focused_integer("id", "")));
    let (kind, data) = response(&fake, &auto);
    assert_eq!(kind, 8, "{data}");
    assert_eq!(data["choices"], json!([]), "{data}");

    // A viewer's or an operator's click is refused, ephemerally, and the task still waits.
    for member in [viewer(), operator(), nobody()] {
        let (kind, data, ephemeral) = click(&fake, &member, &format!("task.approve.{gated}"));
        assert_eq!(kind, 4, "{data}");
        assert!(ephemeral, "{data}");
        assert!(
            content(&data).starts_with("**Refused** (`forbidden`)"),
            "{data}"
        );
        assert!(content(&data).contains("needs the captain role"), "{data}");
    }
    wait_task(&fake, gated, "waiting_approval");

    // A captain's click approves: the message is updated in place, without buttons, and the task runs.
    let (kind, data, ephemeral) = click(&fake, &cap, &format!("task.approve.{gated}"));
    assert_eq!(kind, 7, "{data}");
    assert!(!ephemeral, "{data}");
    assert!(
        content(&data).starts_with(&format!("approved task {gated} [")),
        "{data}"
    );
    assert_eq!(data["components"], json!([]), "{data}");
    wait_task(&fake, gated, "done");
    // The answer of its creation follows it too, and loses its buttons.
    let done = fake.wait_response(&gated_token, T, |r| content(r).contains("[done]"));
    assert!(buttons(&done).is_empty(), "{done}");

    // Reject cancels.
    let (_, rejected, _) = create_task(
        &fake,
        &cap,
        &[
            ("skill", json!("ping")),
            ("args", json!("no")),
            ("approve", json!(true)),
        ],
    );
    let (kind, data, _) = click(&fake, &cap, &format!("task.reject.{rejected}"));
    assert_eq!(kind, 7, "{data}");
    assert!(
        content(&data).starts_with(&format!("rejected task {rejected} [cancelled")),
        "{data}"
    );
    assert_eq!(data["components"], json!([]), "{data}");
    wait_task(&fake, rejected, "cancelled");

    // A finished or unknown task's button, and any other button, say why nothing happened.
    let (kind, data, ephemeral) = click(&fake, &cap, &format!("task.approve.{rejected}"));
    assert!(kind == 4 && ephemeral, "{data}");
    assert!(
        content(&data).starts_with("**Refused** (`task_state`)"),
        "{data}"
    );
    let (kind, data, ephemeral) = click(&fake, &cap, "task.reject.999");
    assert!(kind == 4 && ephemeral, "{data}");
    assert!(
        content(&data).starts_with("**Refused** (`unknown_task`)"),
        "{data}"
    );
    let (kind, data, ephemeral) = click(&fake, &cap, "something.else");
    assert!(kind == 4 && ephemeral, "{data}");
    assert_eq!(content(&data), "This button is no longer active.");

    // Buttons keep working after a restart: their state is the task manager's.
    let (_, later, data) = create_task(
        &fake,
        &cap,
        &[
            ("skill", json!("ping")),
            ("args", json!("later")),
            ("approve", json!(true)),
        ],
    );
    assert_eq!(buttons(&data).len(), 2, "{data}");
    console.close_stdin();
    console.finish();
    let mut console = start(&fake, &data_dir, dir.path());
    let (kind, data, _) = click(&fake, &viewer(), &format!("task.approve.{later}"));
    assert_eq!(kind, 4, "{data}");
    wait_task(&fake, later, "waiting_approval");
    let (kind, data, _) = click(&fake, &cap, &format!("task.approve.{later}"));
    assert_eq!(kind, 7, "{data}");
    wait_task(&fake, later, "done");
    console.close_stdin();
    console.finish();

    // Clicks are audited as the commands they run, by the clicker.
    let store = dreamos_runtime::Store::open(&data_dir).expect("store");
    let audit = dreamos_runtime::audit::AuditLog::open(&store).expect("audit");
    let entries = audit.recent(1000).expect("audit");
    assert!(entries
        .iter()
        .any(|e| e.command == format!("/task approve {gated}") && e.who.contains("(5000)")));
    assert!(entries.iter().any(|e| {
        e.command == format!("/task approve {gated}")
            && e.who.contains("(5003)")
            && matches!(&e.outcome, dreamos_runtime::audit::AuditOutcome::Error { kind, .. } if kind == "forbidden")
    }));
}
