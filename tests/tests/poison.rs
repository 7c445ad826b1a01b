//! A message whose handling kills the process must not crash-loop the swarm. With the `fault` skill
//! (`[debug] fault_skill = true`), `/send agent-1 abort --kind fault` aborts the `dreamos` process while agent-1
//! handles it. The attempt is on disk before the skill runs, so each restart counts one more; after
//! `max_attempts` aborted runs the next start dead-letters the message, tells the captain, and everything else
//! flows.

use std::time::{Duration, Instant};

use dreamos_tests::Console;
use serde_json::Value;

const FAULTS: (&str, &str) = ("DREAMOS_DEBUG__FAULT_SKILL", "true");

/// Waits for a console to die on its own (the fault aborted it) and checks it did not exit cleanly.
fn died(mut console: Console, what: &str) {
    let status = console.wait(Instant::now() + Duration::from_secs(60));
    if status.success() {
        console.fail(&format!(
            "{what}: the process exited cleanly instead of dying"
        ));
    }
}

fn dead_letter_notices(console: &mut Console) -> Vec<Value> {
    console.ok("/history --kind notice.dead_letter")["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

#[test]
fn a_message_that_aborts_the_process_is_dead_lettered_after_max_attempts_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut console = Console::start(dir.path(), &[], &[FAULTS]);
    let before = console.ok("/send agent-2 before the fault --wait");
    assert_eq!(before["reply"]["body"]["text"], "pong: before the fault");
    // The process may die before it prints the acceptance: the message is found in history afterwards.
    console.send("/send agent-1 abort --kind fault");
    died(console, "the first attempt");
    for attempt in 2..=3 {
        // Each start redelivers the message and dies on it again, one recorded attempt further.
        died(
            Console::start(dir.path(), &[], &[FAULTS]),
            &format!("attempt {attempt}"),
        );
    }

    let mut console = Console::start(dir.path(), &[], &[FAULTS]);
    let letters = console.ok("/deadletters")["dead_letters"]
        .as_array()
        .expect("dead letters")
        .clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["agent"], "agent-1");
    assert_eq!(letters[0]["attempts"], 3);
    assert_eq!(letters[0]["message"]["body"]["text"], "abort");
    let error = letters[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("stopped 3 times"), "{error}");
    // The captain was told, in history (the notice was committed with the verdict).
    let notices = dead_letter_notices(&mut console);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["to"], "user:captain");
    assert_eq!(notices[0]["body"]["id"], letters[0]["message"]["id"]);
    // Other messages keep flowing, to the same agent too.
    let after = console.ok("/send agent-1 after the fault --wait");
    assert_eq!(after["reply"]["body"]["text"], "pong: after the fault");
    let history = console.ok("/history --agent agent-1 --kind fault");
    assert_eq!(
        history["messages"][0]["recipients"][0]["status"], "dead",
        "{history}"
    );
    console.finish();
}

#[test]
fn a_stack_overflow_is_counted_like_an_abort() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [FAULTS, ("DREAMOS_MESSAGES__MAX_ATTEMPTS", "1")];
    let mut console = Console::start(dir.path(), &[], &env);
    console.send("/send agent-3 stack_overflow --kind fault");
    died(console, "the overflow");
    let mut console = Console::start(dir.path(), &[], &env);
    let letters = console.ok("/deadletters")["dead_letters"].clone();
    assert_eq!(
        letters[0]["message"]["body"]["text"], "stack_overflow",
        "{letters}"
    );
    assert_eq!(letters[0]["attempts"], 1);
    console.ok("/send agent-3 fine --wait");
    console.finish();
}
