//! `/task` through the binary: a task's life from creation to its result, approval by a captain only, bad input
//! refused with a kind and nothing stored, and finished tasks kept across a restart.

use std::time::{Duration, Instant};

use dreamos_tests::Console;
use serde_json::Value;

/// Polls `/task show ID` until its status is `want`.
fn until_status(console: &mut Console, id: u64, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = console.ok(&format!("/task show {id}"));
        if shown["task"]["status"] == want {
            return shown["task"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "task {id} is not {want}: {shown}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_task_runs_to_its_result_and_bad_input_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let env = [("DREAMOS_MESSAGES__MAX_BODY_BYTES", "2000")];
    let mut console = Console::start(&data, &[], &env);
    let created = console.ok("/task create ping hello there --priority high --title greet");
    let id = created["task"]["id"].as_u64().expect("an id");
    assert_eq!(id, 1);
    assert_eq!(created["task"]["title"], "greet");
    assert_eq!(created["task"]["priority"], "high");
    let done = until_status(&mut console, id, "done");
    assert!(
        done["result"]["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("pong: hello there"),
        "{done}"
    );
    assert_eq!(done["attempts"], 1);
    // JSON arguments are taken as they are.
    let json = console.ok(r#"/task create ping {"text": "as json"}"#);
    let json_id = json["task"]["id"].as_u64().expect("id");
    let done = until_status(&mut console, json_id, "done");
    assert!(done["result"]["text"]
        .as_str()
        .unwrap_or_default()
        .starts_with("pong: as json"));

    // Bad input: a clear error with a kind, and nothing stored.
    for (line, kind) in [
        ("/task create nope", "unknown_skill"),
        ("/task show 99", "unknown_task"),
        ("/task cancel 99", "unknown_task"),
        ("/task create ping x --priority huge", "invalid_argument"),
        ("/task create ping x --after 99", "unknown_dependency"),
        ("/task create ping x --after 1,1", "invalid_argument"),
        ("/task create ping x --after banana", "invalid_argument"),
        ("/task create ping x --timeout banana", "invalid_argument"),
        ("/task create ping x --max-attempts 0", "invalid_argument"),
        ("/task create ping {not json", "invalid_argument"),
        ("/task retry 1", "task_state"),
        ("/task approve 1", "task_state"),
        ("/task", "missing_argument"),
    ] {
        let (got, message) = console.refused(line);
        assert_eq!(got, kind, "{line}: {message}");
    }
    let (kind, message) = console.refused(&format!("/task create ping {}", "x".repeat(3000)));
    assert_eq!(kind, "body_too_large", "{message}");
    let list = console.ok("/task list");
    assert_eq!(list["tasks"].as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(list["tasks"][0]["id"], json_id, "newest first");
    console.finish();

    // Approval: a task that needs it waits; a viewer may not approve it; a captain may.
    let mut console = Console::start(&data, &[], &env);
    let gated = console.ok("/task create ping gated --approve");
    let gated_id = gated["task"]["id"].as_u64().expect("id");
    assert_eq!(gated["task"]["status"], "waiting_approval");
    console.finish();
    let mut viewer = Console::start(&data, &["--role", "viewer"], &env);
    assert_eq!(
        viewer.refused(&format!("/task approve {gated_id}")).0,
        "forbidden"
    );
    assert_eq!(
        viewer.refused("/task create ping from-a-viewer").0,
        "forbidden"
    );
    // The finished tasks are still there after the restarts, and did not run again.
    let first = viewer.ok("/task show 1");
    assert_eq!(first["task"]["status"], "done");
    assert_eq!(first["task"]["attempts"], 1);
    assert_eq!(
        viewer.ok(&format!("/task show {gated_id}"))["task"]["status"],
        "waiting_approval",
        "waiting survives a restart"
    );
    viewer.finish();
    let mut console = Console::start(&data, &[], &env);
    console.ok(&format!("/task approve {gated_id}"));
    until_status(&mut console, gated_id, "done");
    let rejected = console.ok("/task create ping no --approve");
    let rejected_id = rejected["task"]["id"].as_u64().expect("id");
    let after = console.ok(&format!("/task create ping later --after {rejected_id}"));
    let after_id = after["task"]["id"].as_u64().expect("id");
    console.ok(&format!("/task reject {rejected_id}"));
    let failed = console.ok(&format!("/task show {after_id}"));
    assert_eq!(failed["task"]["status"], "failed");
    assert!(failed["task"]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("rejected by console"));
    let waiting = console.ok("/task list --status failed");
    assert_eq!(waiting["tasks"].as_array().map(Vec::len), Some(1));
    console.finish();
}
