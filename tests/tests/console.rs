//! End-to-end: the built `dreamos` binary driven through stdin with `--json`, every answer checked.

use std::time::{Duration, Instant};

use dreamos_tests::{run_dreamos, Console, Line};
use serde_json::Value;

fn ids(values: &Value) -> Vec<String> {
    values
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn a_session_sends_broadcasts_reads_history_and_manages_agents() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = Console::start(dir.path(), &[], &[]);

    let status = console.ok("/status");
    let names: Vec<_> = status["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| a["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(names, ["agent-1", "agent-2", "agent-3", "agent-4"]);
    assert!(status["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .all(|a| a["status"] == "idle"
            && a["skills"]
                == serde_json::json!([
                    "ask", "deps", "impact", "outline", "ping", "recall", "refs", "remember",
                    "report", "scan", "search", "symbol"
                ])));

    // /send answers once accepted, with id and seq; the reply comes as an event.
    let sent = console.ok("/send agent-1 hello");
    assert_eq!(sent["seq"], 1);
    assert_eq!(ids(&sent["recipients"]), ["agent-1"]);
    let id = sent["id"].as_str().expect("id").to_string();
    let reply = console.event("the ping reply", |e| e["data"]["reply_to"] == id.as_str());
    assert_eq!(reply["event"], "reply");
    assert_eq!(reply["data"]["body"]["text"], "pong: hello");
    assert_eq!(reply["data"]["from"], "agent-1");
    assert!(reply.get("ok").is_none(), "events carry no `ok`");

    // --wait includes the reply in the answer.
    let waited = console.ok("/send agent-2 are you there --priority high --wait");
    assert_eq!(waited["priority"], "high");
    assert_eq!(waited["reply"]["body"]["text"], "pong: are you there");
    assert_eq!(waited["reply"]["reply_to"], waited["id"]);

    // A broadcast reaches every live agent, and history records each acknowledgement.
    let order = console.ok("/broadcast all hands on deck");
    assert_eq!(ids(&order["recipients"]).len(), 4);
    let order_id = order["id"].as_str().expect("id").to_string();
    for agent in ["agent-1", "agent-2", "agent-3", "agent-4"] {
        console.event("an order acknowledgement", |e| {
            e["data"]["reply_to"] == order_id.as_str() && e["data"]["from"] == agent
        });
    }
    let history = console.ok("/history --kind order");
    let messages = history["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1);
    let entry = &messages[0];
    for field in [
        "id", "seq", "from", "to", "channel", "priority", "kind", "body",
    ] {
        assert!(
            entry.get(field).is_some(),
            "history entry lacks {field}: {entry}"
        );
    }
    assert_eq!(entry["channel"], "captain");
    assert_eq!(entry["priority"], "urgent");
    assert_eq!(entry["from"], "user:console");
    let receipts = entry["recipients"].as_array().expect("recipients");
    assert_eq!(receipts.len(), 4);
    assert!(
        receipts.iter().all(|r| r["status"] == "handled"),
        "{receipts:?}"
    );

    // Filters and paging.
    let page = console.ok("/history --agent agent-1 --channel cell --limit 1");
    assert_eq!(page["messages"].as_array().expect("page").len(), 1);
    let before = page["next_before"].as_u64().expect("a next page");
    let next = console.ok(&format!(
        "/history --agent agent-1 --channel cell --limit 1 --before {before}"
    ));
    assert!(next["messages"][0]["seq"].as_u64().expect("seq") < before);
    let text = console.ok("/history --text \"are you there\" --kind ping");
    assert_eq!(text["messages"].as_array().expect("messages").len(), 1);
    // Two sends, their replies, the order and its four acknowledgements.
    assert_eq!(
        console.ok("/history --since 1h")["messages"]
            .as_array()
            .map(Vec::len),
        Some(9)
    );

    // Agent lifecycle: stop keeps the queue; spawn delivers it.
    let stopped = console.ok("/agent stop agent-3");
    assert_eq!(stopped["agent"]["status"], "stopped");
    let queued = console.ok("/send agent-3 wake up");
    let queued_id = queued["id"].as_str().expect("id").to_string();
    assert_eq!(console.ok("/agents")["agents"][2]["queue"], 1);
    let broadcast = console.ok("/broadcast roll call");
    assert_eq!(
        ids(&broadcast["recipients"]),
        ["agent-1", "agent-2", "agent-4"]
    );
    assert_eq!(console.refused("/agent stop agent-3").0, "agent_state");
    let spawned = console.ok("/agent spawn agent-3");
    assert_eq!(spawned["agent"]["name"], "agent-3");
    console.event("the queued reply", |e| {
        e["data"]["reply_to"] == queued_id.as_str()
    });
    let new = console.ok("/agent spawn agent-5 --skills ping --groups night");
    assert_eq!(new["agent"]["skills"], serde_json::json!(["ping"]));
    let night = console.ok("/broadcast night shift --group night --priority high");
    assert_eq!(ids(&night["recipients"]), ["agent-5"]);
    assert_eq!(console.refused("/agent spawn agent-5").0, "agent_exists");
    assert_eq!(
        console.refused("/send agent-5 status --kind report").0,
        "unknown_skill"
    );
    let restarted = console.ok("/agent restart agent-5");
    assert_eq!(restarted["agent"]["name"], "agent-5");
    let paused = console.ok("/agent pause agent-4");
    assert_eq!(paused["agent"]["status"], "paused");
    assert_eq!(paused["order"]["acknowledged"], true);
    let resumed = console.ok("/agent resume agent-4");
    assert_ne!(resumed["agent"]["status"], "paused");

    // Nothing failed, so there are no dead letters yet.
    assert_eq!(
        console.ok("/deadletters")["dead_letters"],
        serde_json::json!([])
    );
    let help = console.ok("/help");
    assert_eq!(help["commands"].as_array().map(Vec::len), Some(23));
    console.finish();
}

#[test]
fn messages_for_an_agent_removed_from_the_config_become_dead_letters_and_the_captain_is_told() {
    let dir = tempfile::tempdir().expect("temp dir");
    let five = dir.path().join("five.toml");
    std::fs::write(
        &five,
        "[[agents]]\nname = \"agent-1\"\n[[agents]]\nname = \"agent-5\"\n",
    )
    .expect("config");
    let data = dir.path().join("data");
    let five_arg = five.to_str().expect("utf-8 path");
    let mut console = Console::start(&data, &["--config", five_arg], &[]);
    console.ok("/agent pause agent-5");
    let queued = console.ok("/send agent-5 anyone home");
    let id = queued["id"].as_str().expect("id").to_string();
    console.finish();

    // Restart without agent-5 in the configuration.
    let one = dir.path().join("one.toml");
    std::fs::write(&one, "[[agents]]\nname = \"agent-1\"\n").expect("config");
    let mut console = Console::start(&data, &["--config", one.to_str().expect("utf-8 path")], &[]);
    let notice = console.event("the dead-letter notice", |e| {
        e["event"] == "notice" && e["data"]["kind"] == "notice.dead_letter"
    });
    assert_eq!(notice["data"]["to"], "user:captain");
    assert_eq!(notice["data"]["body"]["id"], id.as_str());
    let letters = console.ok("/deadletters");
    let letters = letters["dead_letters"].as_array().expect("letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["agent"], "agent-5");
    assert_eq!(letters[0]["message"]["id"], id.as_str());
    assert!(letters[0]["error"]
        .as_str()
        .expect("error")
        .contains("no longer exists"));
    let history = console.ok("/history --kind ping");
    assert_eq!(history["messages"][0]["recipients"][0]["status"], "dead");
    console.finish();
}

#[test]
fn bad_input_gets_clear_errors_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = Console::start(dir.path(), &[], &[]);
    let big = "x".repeat(65 * 1024);
    let cases: &[(&str, &str, &str)] = &[
        ("/frobnicate", "unknown_command", "/frobnicate"),
        ("send agent-1 hi", "unknown_command", "start with '/'"),
        ("/send agent-9 hello", "unknown_agent", "agent-9"),
        ("/send", "missing_argument", "usage"),
        ("/send agent-1", "missing_argument", "TEXT"),
        ("/status please", "unexpected_argument", "please"),
        (
            "/send agent-1 hi --colour red",
            "unexpected_argument",
            "--colour",
        ),
        (
            "/send agent-1 hi --priority asap",
            "invalid_argument",
            "low, normal, high or urgent",
        ),
        ("/send agent-1 hi --kind Shout", "invalid_argument", "Shout"),
        ("/send agent-1 hi --kind dance", "unknown_skill", "dance"),
        ("/send all hi", "invalid_argument", "/broadcast"),
        ("/broadcast hi --group nobody", "unknown_group", "nobody"),
        ("/history --limit 0", "invalid_argument", "--limit"),
        (
            "/history --since yesterdayish",
            "invalid_argument",
            "--since",
        ),
        ("/history --agent ghost", "unknown_agent", "ghost"),
        ("/agent explode agent-1", "invalid_argument", "spawn, stop"),
        ("/agent spawn Bad!Name", "invalid_argument", "Bad!Name"),
        ("/send agent-1 \"unclosed", "invalid_argument", "quote"),
    ];
    for (line, kind, fragment) in cases {
        let (got, message) = console.refused(line);
        assert_eq!(&got, kind, "{line}: {message}");
        assert!(
            message.contains(fragment),
            "{line}: `{message}` lacks `{fragment}`"
        );
    }
    let (kind, message) = console.refused(&format!("/send agent-1 {big}"));
    assert_eq!(kind, "body_too_large", "{message}");
    assert!(message.contains("65536"), "{message}");
    // Nothing above was stored.
    assert_eq!(console.ok("/status")["messages"]["last_seq"], 0);
    console.finish();

    // A viewer may look but not order.
    let mut viewer = Console::start(dir.path(), &["--role", "viewer"], &[]);
    let (kind, message) = viewer.refused("/broadcast hi");
    assert_eq!(kind, "forbidden");
    assert!(
        message.contains("captain") && message.contains("viewer"),
        "{message}"
    );
    assert_eq!(viewer.refused("/send agent-1 hi").0, "forbidden");
    assert_eq!(viewer.refused("/agent stop agent-1").0, "forbidden");
    assert_eq!(viewer.ok("/status")["messages"]["last_seq"], 0);
    viewer.ok("/history");
    viewer.finish();
}

#[test]
fn a_second_process_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = Console::start(dir.path(), &[], &[]);
    first.ok("/status");
    let data = dir.path().to_str().expect("utf-8 path");
    let (status, _, stderr) = run_dreamos(&["run", "--json", "--data-dir", data], &[], "/status\n");
    assert!(!status.success());
    assert!(
        stderr.contains("in use by another dreamos process"),
        "{stderr}"
    );
    first.finish();
}

#[test]
fn configuration_errors_name_the_key_and_the_source() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let (status, _, stderr) = run_dreamos(
        &["run", "--data-dir", data],
        &[("DREAMOS_LOG__COLOUR", "red")],
        "",
    );
    assert!(!status.success());
    assert!(
        stderr.contains("log.colour") && stderr.contains("DREAMOS_LOG__COLOUR"),
        "{stderr}"
    );
    let (status, _, stderr) = run_dreamos(
        &["run", "--data-dir", data, "--config", "/nonexistent.toml"],
        &[],
        "",
    );
    assert!(!status.success());
    assert!(stderr.contains("/nonexistent.toml"), "{stderr}");
    let (status, stdout, _) =
        run_dreamos(&["config"], &[("DREAMOS_MESSAGES__MAX_ATTEMPTS", "7")], "");
    assert!(status.success());
    assert!(stdout.contains("max_attempts = 7"), "{stdout}");
}

#[test]
fn sigterm_shuts_down_cleanly_and_keeps_the_queue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = Console::start(dir.path(), &[], &[]);
    console.ok("/agent pause agent-2");
    let queued = console.ok("/send agent-2 later");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &console.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = console.wait(Instant::now() + Duration::from_secs(30));
    assert!(exit.success(), "exit status {exit}");

    let mut console = Console::start(dir.path(), &[], &[]);
    assert_eq!(console.ok("/agents")["agents"][1]["queue"], 1);
    console.ok("/agent resume agent-2");
    let id = queued["id"].as_str().expect("id").to_string();
    console.event("the queued reply", |e| e["data"]["reply_to"] == id.as_str());
    let rest = console.finish();
    assert!(rest.iter().all(|l| matches!(l, Line::Event(_))), "{rest:?}");
}
