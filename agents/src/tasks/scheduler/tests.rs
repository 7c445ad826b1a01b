//! The scheduler's rules, with plain numbers for time.

use super::*;
use dreamos_runtime::task::Origin;
use serde_json::json;

const BACKOFF: Backoff = Backoff {
    initial_ms: 100,
    max_ms: 1_000,
};

fn scheduler() -> Scheduler {
    let skills = ["ping", "index", "search"].map(String::from);
    let mut s = Scheduler::new(skills, BACKOFF, 7);
    s.set_agent("a", &["*".to_string()], false, 1);
    s.set_agent("b", &["*".to_string()], false, 1);
    s
}

fn spec(skill: &str) -> TaskSpec {
    TaskSpec {
        title: format!("{skill} task"),
        ..TaskSpec::new(skill, json!({}), 3, Origin::new("user:console", "console"))
    }
}

fn with(mut s: TaskSpec, f: impl FnOnce(&mut TaskSpec)) -> TaskSpec {
    f(&mut s);
    s
}

fn placed(assignments: &[Assignment]) -> Vec<(u64, &str)> {
    assignments
        .iter()
        .map(|a| (a.task.0, a.agent.as_str()))
        .collect()
}

fn status(s: &Scheduler, id: TaskId) -> TaskStatus {
    s.get(id).expect("task").status
}

#[test]
fn highest_priority_first_and_first_in_first_out_within_a_priority() {
    let mut s = scheduler();
    s.set_agent("b", &["*".to_string()], true, 1);
    let now = Millis(0);
    let low = s.create(with(spec("ping"), |t| t.priority = Priority::Low), now);
    let n1 = s.create(spec("ping"), now);
    let urgent = s.create(with(spec("ping"), |t| t.priority = Priority::Urgent), now);
    let n2 = s.create(spec("ping"), now);
    let (low, n1, urgent, n2) = (
        low.expect("low"),
        n1.expect("n1"),
        urgent.expect("urgent"),
        n2.expect("n2"),
    );
    // One agent with room for one task: the order tasks start in is the order they are taken.
    let mut order = Vec::new();
    for _ in 0..4 {
        let started = s.schedule(now);
        assert_eq!(started.len(), 1);
        order.push(started[0].task);
        s.succeeded(started[0].task, json!(null), now);
    }
    assert_eq!(order, [urgent, n1, n2, low]);
}

#[test]
fn only_an_agent_with_the_skill_takes_a_task_and_others_are_not_blocked() {
    let mut s = Scheduler::new(["index", "ping"].map(String::from), BACKOFF, 1);
    s.set_agent("pinger", &["ping".to_string()], false, 4);
    let index = s.create(
        with(spec("index"), |t| t.priority = Priority::Urgent),
        Millis(0),
    );
    let ping = s.create(spec("ping"), Millis(0));
    // The urgent index task has no agent; the ping task behind it still runs.
    assert_eq!(placed(&s.schedule(Millis(0))), [(2, "pinger")]);
    assert_eq!(status(&s, index.expect("index")), TaskStatus::Queued);
    assert_eq!(status(&s, ping.expect("ping")), TaskStatus::Running);
    s.set_agent("indexer", &["index".to_string()], false, 1);
    assert_eq!(placed(&s.schedule(Millis(1))), [(1, "indexer")]);
    // A skill no agent of the swarm has is refused when the task is created.
    let err = s
        .create(spec("nope"), Millis(2))
        .expect_err("unknown skill");
    assert_eq!(err.kind(), "unknown_skill");
}

#[test]
fn the_least_loaded_agent_first_within_each_agents_limit() {
    let mut s = Scheduler::new(["ping"].map(String::from), BACKOFF, 1);
    s.set_agent("a", &["*".to_string()], false, 2);
    s.set_agent("b", &["*".to_string()], false, 2);
    s.set_agent("c", &["*".to_string()], true, 2);
    for _ in 0..6 {
        s.create(spec("ping"), Millis(0)).expect("create");
    }
    let started = s.schedule(Millis(0));
    // Alternating a, b (ties go by name), two each; paused c takes nothing; two wait.
    assert_eq!(placed(&started), [(1, "a"), (2, "b"), (3, "a"), (4, "b")]);
    assert_eq!((s.load("a"), s.load("b"), s.load("c")), (2, 2, 0));
    assert!(s.schedule(Millis(0)).is_empty(), "every agent is full");
    s.succeeded(TaskId(2), json!(1), Millis(1));
    assert_eq!(placed(&s.schedule(Millis(1))), [(5, "b")]);
    s.set_agent("c", &["*".to_string()], false, 2);
    assert_eq!(placed(&s.schedule(Millis(2))), [(6, "c")]);
}

#[test]
fn a_failed_attempt_is_retried_after_an_exponential_backoff_with_jitter() {
    let mut s = scheduler();
    let id = s
        .create(with(spec("ping"), |t| t.max_attempts = 4), Millis(0))
        .expect("create");
    let mut now = Millis(0);
    for attempt in 1..=3u32 {
        assert_eq!(placed(&s.schedule(now)).len(), 1, "attempt {attempt}");
        s.failed(id, format!("boom {attempt}"), now);
        let task = s.get(id).expect("task");
        assert_eq!(task.status, TaskStatus::Queued);
        let wait = task.not_before.expect("backoff").0 - now.0;
        let ceiling = BACKOFF.ceiling(attempt);
        assert_eq!(ceiling, [100, 200, 400][attempt as usize - 1]);
        assert!(
            (ceiling / 2..=ceiling).contains(&wait),
            "attempt {attempt}: waited {wait} ms, ceiling {ceiling}"
        );
        assert_eq!(s.next_wakeup(), task.not_before);
        // Not a moment before the backoff ends.
        assert!(s.schedule(Millis(now.0 + wait - 1)).is_empty());
        now = Millis(now.0 + wait);
    }
    assert_eq!(placed(&s.schedule(now)).len(), 1);
    s.failed(id, "boom 4".to_string(), now);
    let task = s.get(id).expect("task");
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 4);
    assert_eq!(task.error.as_deref(), Some("boom 4"));
    assert_eq!(BACKOFF.ceiling(30), 1_000, "capped at max");
}

#[test]
fn a_timeout_counts_as_a_failed_attempt() {
    let mut s = scheduler();
    let id = s
        .create(
            with(spec("ping"), |t| {
                t.timeout_ms = Some(500);
                t.max_attempts = 1;
            }),
            Millis(1_000),
        )
        .expect("create");
    s.schedule(Millis(1_000));
    assert_eq!(s.next_wakeup(), Some(Millis(1_500)));
    assert!(s.expire(Millis(1_499)).is_empty());
    assert_eq!(s.expire(Millis(1_500)), [id]);
    let task = s.get(id).expect("task");
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.error.as_deref(), Some("timed out after 500 ms"));
    assert_eq!(s.load("a") + s.load("b"), 0, "the slot is free again");
    // A late success of the timed-out attempt changes nothing.
    assert!(s.succeeded(id, json!(1), Millis(1_600)).is_empty());
    assert_eq!(status(&s, id), TaskStatus::Failed);
}

#[test]
fn a_failure_for_good_is_not_retried_whatever_attempts_are_left() {
    let mut s = scheduler();
    let id = s
        .create(with(spec("ping"), |t| t.max_attempts = 5), Millis(0))
        .expect("create");
    let after = s
        .create(with(spec("ping"), |t| t.after = vec![id]), Millis(0))
        .expect("create");
    s.schedule(Millis(0));
    let changed = s.failed_for_good(id, "no such directory".to_string(), Millis(10));
    assert_eq!(changed, [id, after]);
    let task = s.get(id).expect("task");
    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.attempts, 1);
    assert_eq!(task.error.as_deref(), Some("no such directory"));
    assert_eq!(status(&s, after), TaskStatus::Failed);
    assert!(s.schedule(Millis(100_000)).is_empty(), "nothing is retried");
}

#[test]
fn dependencies_run_in_order_and_a_failure_fails_every_dependent_with_the_reason() {
    let mut s = scheduler();
    let first = s
        .create(with(spec("index"), |t| t.max_attempts = 1), Millis(0))
        .expect("first");
    let second = s
        .create(with(spec("search"), |t| t.after = vec![first]), Millis(0))
        .expect("second");
    let third = s
        .create(with(spec("ping"), |t| t.after = vec![second]), Millis(0))
        .expect("third");
    let other = s.create(spec("ping"), Millis(0)).expect("other");
    // Only tasks whose dependencies are done may start.
    assert_eq!(placed(&s.schedule(Millis(0))), [(1, "a"), (4, "b")]);
    let changed = s.failed(first, "disk full".to_string(), Millis(5));
    assert_eq!(changed, [first, second, third]);
    assert_eq!(status(&s, second), TaskStatus::Failed);
    assert_eq!(
        s.get(second).and_then(|t| t.error.clone()).as_deref(),
        Some("task 1, which it depends on, failed: disk full")
    );
    assert_eq!(
        s.get(third).and_then(|t| t.error.clone()).as_deref(),
        Some("task 2, which it depends on, failed: task 1, which it depends on, failed: disk full")
    );
    assert_eq!(status(&s, other), TaskStatus::Running);
    // Creating a task after a failed one is refused; so is an unknown dependency.
    let err = s
        .create(with(spec("ping"), |t| t.after = vec![first]), Millis(6))
        .expect_err("after failed");
    assert_eq!(err.kind(), "dependency_failed");
    let err = s
        .create(
            with(spec("ping"), |t| t.after = vec![TaskId(99)]),
            Millis(6),
        )
        .expect_err("unknown");
    assert_eq!(err.kind(), "unknown_dependency");
    // Once retried, the dependency runs again; success lets its dependent start.
    s.retry(first, Millis(7)).expect("retry");
    s.retry(second, Millis(7)).expect("retry");
    assert_eq!(placed(&s.schedule(Millis(7))), [(1, "a")]);
    s.succeeded(first, json!("ok"), Millis(8));
    assert_eq!(placed(&s.schedule(Millis(8))), [(2, "a")]);
}

#[test]
fn a_dependency_cycle_is_refused_and_nothing_is_stored() {
    let mut s = scheduler();
    let a = s.create(spec("ping"), Millis(0)).expect("a");
    let b = s
        .create(with(spec("ping"), |t| t.after = vec![a]), Millis(0))
        .expect("b");
    // A task may only depend on tasks that exist, so a cycle needs a record that says otherwise (as a store edited
    // by hand would): make `a` depend on the next id, then create that task depending on `b`.
    let next = TaskId(b.0 + 1);
    let mut edited: Vec<Task> = s.tasks().cloned().collect();
    edited[0].after = vec![next];
    let mut s2 = scheduler();
    s2.recover(edited, Millis(0));
    let err = s2
        .create(with(spec("ping"), |t| t.after = vec![b]), Millis(1))
        .expect_err("cycle");
    assert_eq!(err.kind(), "dependency_cycle");
    assert!(err.to_string().contains("3 → 2 → 1 → 3"), "{err}");
    assert_eq!(s2.tasks().count(), 2, "nothing stored");
    // And the plain case: a task naming itself.
    let err = s
        .create(with(spec("ping"), |t| t.after = vec![next]), Millis(1))
        .expect_err("self");
    assert_eq!(err.kind(), "dependency_cycle");
    let err = s
        .create(with(spec("ping"), |t| t.after = vec![a, a]), Millis(1))
        .expect_err("twice");
    assert_eq!(err.kind(), "invalid_argument");
}

#[test]
fn cancelling_a_running_task_stops_its_skill_and_fails_its_dependents() {
    let mut s = scheduler();
    let id = s.create(spec("index"), Millis(0)).expect("create");
    let dependent = s
        .create(with(spec("ping"), |t| t.after = vec![id]), Millis(0))
        .expect("dependent");
    s.schedule(Millis(0));
    let (interrupt, changed) = s.cancel(id, Millis(3)).expect("cancel");
    assert_eq!(interrupt, Interrupt::Stop);
    assert_eq!(changed, [id, dependent]);
    assert_eq!(status(&s, id), TaskStatus::Cancelled);
    assert_eq!(
        s.get(dependent).and_then(|t| t.error.clone()).as_deref(),
        Some("task 1, which it depends on, was cancelled")
    );
    assert_eq!(s.load("a"), 0, "the agent is free at once");
    // The skill's late answer changes nothing; a finished task cannot be cancelled again.
    assert!(s.succeeded(id, json!(1), Millis(4)).is_empty());
    assert_eq!(
        s.cancel(id, Millis(5)).expect_err("again").kind(),
        "task_state"
    );
    assert_eq!(
        s.cancel(TaskId(42), Millis(5)).expect_err("unknown").kind(),
        "unknown_task"
    );
}

#[test]
fn pausing_the_swarm_starts_nothing_new_and_resuming_goes_on() {
    let mut s = scheduler();
    let first = s.create(spec("ping"), Millis(0)).expect("first");
    s.schedule(Millis(0));
    s.set_paused(true);
    let second = s.create(spec("ping"), Millis(1)).expect("second");
    assert!(s.schedule(Millis(1)).is_empty());
    assert_eq!(
        status(&s, first),
        TaskStatus::Running,
        "running work goes on"
    );
    s.set_paused(false);
    assert_eq!(placed(&s.schedule(Millis(2))), [(second.0, "b")]);
}

#[test]
fn pausing_one_task_holds_it_and_a_running_one_keeps_its_checkpoint() {
    let mut s = scheduler();
    let queued = s.create(spec("ping"), Millis(0)).expect("queued");
    s.set_agent("a", &["*".to_string()], true, 1);
    s.set_agent("b", &["*".to_string()], true, 1);
    assert_eq!(s.pause(queued, Millis(1)), Ok(Interrupt::None));
    s.set_agent("a", &["*".to_string()], false, 1);
    assert!(
        s.schedule(Millis(2)).is_empty(),
        "a paused task does not start"
    );
    s.resume(queued, Millis(3)).expect("resume");
    assert_eq!(placed(&s.schedule(Millis(3))), [(queued.0, "a")]);
    s.checkpoint(queued, json!({"done": 40}), Millis(4));
    s.progress(
        queued,
        Progress {
            percent: 140,
            line: "40 of 100".to_string(),
        },
        Millis(4),
    );
    assert_eq!(s.pause(queued, Millis(5)), Ok(Interrupt::Stop));
    s.interrupted(queued, TaskStatus::Paused, Millis(6));
    let task = s.get(queued).expect("task");
    assert_eq!(task.status, TaskStatus::Paused);
    assert_eq!(task.attempts, 0, "an interrupted attempt does not count");
    assert_eq!(task.checkpoint, Some(json!({"done": 40})));
    assert_eq!(task.progress.as_ref().map(|p| p.percent), Some(100));
    assert_eq!(
        s.resume(TaskId(9), Millis(7)).expect_err("unknown").kind(),
        "unknown_task"
    );
    s.resume(queued, Millis(7)).expect("resume");
    assert_eq!(
        s.resume(queued, Millis(7)).expect_err("not paused").kind(),
        "task_state"
    );
}

#[test]
fn a_task_that_needs_approval_waits_for_a_captain() {
    let mut s = scheduler();
    let approved = s
        .create(with(spec("ping"), |t| t.approve = true), Millis(0))
        .expect("approved");
    let rejected = s
        .create(with(spec("ping"), |t| t.approve = true), Millis(0))
        .expect("rejected");
    let dependent = s
        .create(with(spec("ping"), |t| t.after = vec![rejected]), Millis(0))
        .expect("dependent");
    assert_eq!(status(&s, approved), TaskStatus::WaitingApproval);
    assert!(s.schedule(Millis(1)).is_empty(), "nothing runs unapproved");
    // Paused while waiting, it still needs the approval when resumed.
    s.pause(approved, Millis(1)).expect("pause");
    s.resume(approved, Millis(1)).expect("resume");
    assert_eq!(status(&s, approved), TaskStatus::WaitingApproval);
    s.approve(approved, "user:captain", Millis(2))
        .expect("approve");
    assert_eq!(placed(&s.schedule(Millis(2))), [(approved.0, "a")]);
    let changed = s
        .reject(rejected, "user:captain", Millis(3))
        .expect("reject");
    assert_eq!(changed, [rejected, dependent]);
    assert_eq!(status(&s, rejected), TaskStatus::Cancelled);
    assert_eq!(
        s.get(dependent).and_then(|t| t.error.clone()).as_deref(),
        Some("task 2, which it depends on, was rejected by user:captain")
    );
    assert_eq!(
        s.approve(approved, "x", Millis(4))
            .expect_err("not waiting")
            .kind(),
        "task_state"
    );
}

#[test]
fn after_a_restart_running_tasks_resume_from_their_checkpoint_and_finished_ones_stay_finished() {
    let mut s = scheduler();
    let done = s.create(spec("ping"), Millis(0)).expect("done");
    let running = s.create(spec("index"), Millis(0)).expect("running");
    let last = s
        .create(with(spec("index"), |t| t.max_attempts = 1), Millis(0))
        .expect("last");
    let dependent = s
        .create(with(spec("ping"), |t| t.after = vec![last]), Millis(0))
        .expect("dependent");
    s.set_agent("c", &["*".to_string()], false, 1);
    s.schedule(Millis(0));
    s.succeeded(done, json!("result"), Millis(1));
    s.checkpoint(running, json!({"files": 12}), Millis(2));
    // The process dies here: the store holds these records.
    let stored: Vec<Task> = s.tasks().cloned().collect();
    let mut after = scheduler();
    let changed = after.recover(stored, Millis(10));
    assert_eq!(changed, [running, last, dependent]);
    assert_eq!(status(&after, done), TaskStatus::Done);
    let task = after.get(running).expect("running");
    assert_eq!(task.status, TaskStatus::Queued);
    assert_eq!(task.checkpoint, Some(json!({"files": 12})));
    assert_eq!(task.attempts, 1);
    assert_eq!(
        status(&after, last),
        TaskStatus::Failed,
        "its only attempt died"
    );
    assert_eq!(status(&after, dependent), TaskStatus::Failed);
    // New ids continue after the recovered ones, and the resumed task starts again.
    let next = after.create(spec("ping"), Millis(11)).expect("next");
    assert_eq!(next, TaskId(5));
    assert_eq!(
        placed(&after.schedule(Millis(11))),
        [(running.0, "a"), (next.0, "b")]
    );
}

/// The indexes (queued order, timers, dependents) always agree with the records, whatever happens in between.
#[test]
fn the_indexes_agree_with_the_records_through_random_operations() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut s = scheduler();
    s.set_agent("a", &["*".to_string()], false, 3);
    let mut now = 0u64;
    for step in 0..3_000 {
        now += rng.random_range(0..50);
        let t = Millis(now);
        let count = s.tasks().count() as u64;
        let pick = TaskId(rng.random_range(1..=count.max(1)));
        match rng.random_range(0..12) {
            0 | 1 => {
                let mut spec = spec("ping");
                spec.priority = Priority::ALL[rng.random_range(0..4)];
                spec.approve = rng.random_bool(0.1);
                spec.timeout_ms = rng.random_bool(0.3).then(|| rng.random_range(1..200));
                if count > 0 && rng.random_bool(0.3) {
                    spec.after = vec![pick];
                }
                let _ = s.create(spec, t);
            }
            2 | 3 => {
                s.schedule(t);
            }
            4 => {
                s.succeeded(pick, json!(step), t);
            }
            5 => {
                s.failed(pick, "x".to_string(), t);
            }
            6 => {
                let _ = s.cancel(pick, t);
            }
            7 => {
                let _ = s.pause(pick, t);
            }
            8 => {
                let _ = s.resume(pick, t);
            }
            9 => {
                let _ = s.retry(pick, t);
            }
            10 => {
                let _ = s.approve(pick, "c", t);
            }
            _ => {
                s.expire(t);
            }
        }
        let queued: BTreeSet<(std::cmp::Reverse<Priority>, TaskId)> = s
            .tasks()
            .filter(|t| t.status == TaskStatus::Queued)
            .map(|t| (std::cmp::Reverse(t.priority), t.id))
            .collect();
        assert_eq!(s.queued, queued, "step {step}");
        let wake = s
            .tasks()
            .filter_map(|t| match t.status {
                TaskStatus::Queued => t.not_before,
                TaskStatus::Running => Some(Millis(t.started_at?.0 + t.timeout_ms?)),
                _ => None,
            })
            .min();
        assert_eq!(s.next_wakeup(), wake, "step {step}");
        // No unfinished task waits on a failed or cancelled one: it would have failed with it.
        for task in s.tasks().filter(|t| !t.status.is_final()) {
            for dep in &task.after {
                let dep = s.get(*dep).expect("dependency");
                assert!(
                    !matches!(dep.status, TaskStatus::Failed | TaskStatus::Cancelled)
                        || task.status == TaskStatus::Running,
                    "step {step}: task {} waits on {} which is {:?}",
                    task.id,
                    dep.id,
                    dep.status
                );
            }
        }
    }
    assert!(s.tasks().count() > 100);
}
