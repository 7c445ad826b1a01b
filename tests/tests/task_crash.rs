//! Crash test of durable execution: tasks of the `steps` skill (`[debug] fault_skill`), each saving a checkpoint
//! after every step, run on one agent while the `dreamos run --json` process is killed with SIGKILL at random
//! moments, again and again on the same data directory. The skill writes what it does to a journal file
//! (`[debug] journal`): `start TASK FROM`, `step TASK K`, `saved TASK K` (after the checkpoint is durable) and
//! `finish TASK`. From it and from the `task` events (sent only once a change is durable) the test checks:
//!
//! - after each restart the interrupted task starts again within 10 s, from its latest durable checkpoint;
//! - no step before a saved checkpoint runs again, and a task seen done never starts again;
//! - tasks start in the order they were queued (one agent, one task at a time, same priority);
//! - no task is lost: in the end every one is done with its result.
//!
//! `DREAMOS_TASK_CRASH_ITERATIONS` sets the number of kills (default 20); `DREAMOS_TASK_CRASH_SEED` replays a run.

use std::{
    collections::HashMap,
    path::Path,
    time::{Duration, Instant},
};

use dreamos_tests::{Console, Line};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::Value;

const STEPS: u64 = 15;
const STEP_MS: u64 = 60;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Start { task: u64, from: u64 },
    Step { task: u64, step: u64 },
    Saved { task: u64, next: u64 },
    Finish { task: u64 },
}

fn journal(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        // A line cut by the kill is not an entry.
        .filter_map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let number = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
            Some(match *words.first()? {
                "start" => Entry::Start {
                    task: number(1)?,
                    from: number(2)?,
                },
                "step" => Entry::Step {
                    task: number(1)?,
                    step: number(2)?,
                },
                "saved" => Entry::Saved {
                    task: number(1)?,
                    next: number(2)?,
                },
                "finish" => Entry::Finish { task: number(1)? },
                _ => return None,
            })
        })
        .collect()
}

#[test]
fn tasks_resume_from_their_checkpoints_after_sigkill_and_finished_ones_never_run_again() {
    let iterations = env_number("DREAMOS_TASK_CRASH_ITERATIONS", 20);
    let seed = env_number("DREAMOS_TASK_CRASH_SEED", rand::rng().random());
    let tasks = iterations.max(20) + 4;
    eprintln!(
        "task crash test: {iterations} kills, {tasks} tasks, seed {seed} (DREAMOS_TASK_CRASH_SEED={seed} replays it)"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let begun = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let journal_path = dir.path().join("journal");
    let journal_env = journal_path.to_str().expect("utf-8 path").to_string();
    let env = [
        ("DREAMOS_DEBUG__FAULT_SKILL", "true"),
        ("DREAMOS_DEBUG__JOURNAL", journal_env.as_str()),
    ];

    // One agent runs the tasks, one at a time, so their order is the queue's order.
    let mut first = Console::start(&data, &[], &env);
    for agent in ["agent-2", "agent-3", "agent-4"] {
        first.ok(&format!("/agent pause {agent}"));
    }
    let mut ids = Vec::new();
    for n in 0..tasks {
        let created = first.ok(&format!(
            r#"/task create steps {{"steps": {STEPS}, "ms": {STEP_MS}}} --title t{n} --max-attempts 100"#
        ));
        ids.push(created["task"]["id"].as_u64().expect("id"));
    }

    // Where in the journal each task was seen done (durably): it must never start after that.
    let mut done_at: HashMap<u64, usize> = HashMap::new();
    eprintln!(
        "task crash test: {tasks} tasks created after {:?}",
        begun.elapsed()
    );
    let mut resumes = Vec::new();
    let mut first = Some(first);
    for iteration in 0..iterations {
        let mut console = match first.take() {
            Some(console) => console,
            None => {
                let mark = journal(&journal_path).len();
                let started = Instant::now();
                let mut console = Console::start(&data, &[], &env);
                if done_at.len() < ids.len() {
                    // Something is unfinished: a task starts again within 10 s.
                    let deadline = started + Duration::from_secs(10);
                    loop {
                        let entries = journal(&journal_path);
                        if entries[mark..]
                            .iter()
                            .any(|e| matches!(e, Entry::Start { .. }))
                        {
                            resumes.push(started.elapsed());
                            break;
                        }
                        if Instant::now() > deadline {
                            // Done while the process died, unseen? Then nothing is left to resume.
                            let listed = console.ok("/task list --status done --limit 1000");
                            if listed["tasks"].as_array().map_or(0, Vec::len) == ids.len() {
                                break;
                            }
                            console.fail(&format!(
                            "iteration {iteration}: no task started again within 10 s of the restart"
                        ));
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                console
            }
        };
        // Let it run for a random while, noting the tasks that become done, then kill it.
        let kill_at = Instant::now() + Duration::from_millis(rng.random_range(50..=1_500));
        loop {
            match console.line_before(kill_at) {
                Ok(Line::Event(event)) => {
                    if event["event"] == "task" && event["data"]["status"] == "done" {
                        let id = event["data"]["id"].as_u64().expect("id");
                        done_at
                            .entry(id)
                            .or_insert_with(|| journal(&journal_path).len());
                    }
                }
                Ok(_) => {}
                Err(true) => break,
                Err(false) => console.fail("the console exited on its own"),
            }
        }
        console.kill();
    }

    eprintln!("task crash test: kills done after {:?}", begun.elapsed());
    // A clean run finishes what is left.
    let mut console = Console::start(&data, &[], &env);
    let deadline = Instant::now() + Duration::from_secs(120);
    let listed = loop {
        let listed = console.ok("/task list --limit 1000");
        let all = listed["tasks"].as_array().expect("tasks").clone();
        if all.len() == ids.len() && all.iter().all(|t| t["status"] == "done") {
            break all;
        }
        if Instant::now() > deadline {
            console.fail(&format!("not every task finished: {listed}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    console.finish();
    eprintln!("task crash test: all done after {:?}", begun.elapsed());

    // No task lost, each with its result.
    let mut listed_ids: Vec<u64> = listed
        .iter()
        .map(|t| t["id"].as_u64().expect("id"))
        .collect();
    listed_ids.sort_unstable();
    assert_eq!(listed_ids, ids);
    for task in &listed {
        assert_eq!(task["result"]["steps"], Value::from(STEPS), "{task}");
    }

    let entries = journal(&journal_path);
    // Queue order: one agent takes tasks in id order; an interrupted one starts again before the next.
    let starts: Vec<u64> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Start { task, .. } => Some(*task),
            _ => None,
        })
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "tasks started out of order: {starts:?}"
    );
    let mut saved: HashMap<u64, u64> = HashMap::new();
    for (at, entry) in entries.iter().enumerate() {
        match entry {
            Entry::Start { task, from } => {
                if let Some(done) = done_at.get(task) {
                    assert!(
                        at < *done,
                        "task {task} started again (journal line {at}) after it was seen done (line {done})"
                    );
                }
                let latest = saved.get(task).copied().unwrap_or(0);
                // The checkpoint may have become durable just before the kill, before its `saved` line.
                assert!(
                    *from == latest || *from == latest + 1,
                    "task {task} resumed from step {from}, but its latest saved checkpoint was {latest}"
                );
                if let Some(Entry::Step { task: t, step }) = entries[at + 1..]
                    .iter()
                    .find(|e| matches!(e, Entry::Step { task: t, .. } if t == task))
                {
                    assert_eq!(
                        *step, *from,
                        "task {t} resumed at step {step}, not at its checkpoint {from}"
                    );
                }
            }
            Entry::Step { task, step } => {
                let latest = saved.get(task).copied().unwrap_or(0);
                assert!(
                    *step >= latest,
                    "task {task} ran step {step} again after checkpoint {latest} was saved"
                );
            }
            Entry::Saved { task, next } => {
                saved.insert(*task, *next);
            }
            Entry::Finish { .. } => {}
        }
    }
    let step_lines = entries
        .iter()
        .filter(|e| matches!(e, Entry::Step { .. }))
        .count() as u64;
    let extra = step_lines - tasks * STEPS;
    assert!(
        extra <= iterations,
        "{extra} steps ran again over {iterations} kills: more than one per kill"
    );
    let slowest = resumes.iter().max().copied().unwrap_or_default();
    eprintln!(
        "task crash test: {} restarts resumed a task (slowest {slowest:?}); {extra} steps ran twice; {} tasks seen done before a kill",
        resumes.len(),
        done_at.len()
    );
}
