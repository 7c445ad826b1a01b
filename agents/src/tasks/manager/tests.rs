//! The task manager with a real swarm (sled in a temp dir, the real log) on tokio's paused clock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use dreamos_runtime::config::Config;
use dreamos_runtime::task::{Origin, TaskSpec, TaskStatus, TaskStore};
use dreamos_runtime::Store;
use serde_json::json;

use super::*;
use crate::skill::{Skill, SkillContext, SkillError, SkillRegistry};
use crate::Swarm;

/// `work`: `steps` steps of 100 ms each, a checkpoint after each; resumes from its checkpoint; stops when
/// cancelled. Every step it runs is counted, so a test sees what was redone.
struct Work {
    steps_run: Arc<AtomicU32>,
    starts: Arc<Mutex<Vec<tokio::time::Instant>>>,
}

#[async_trait]
impl Skill for Work {
    fn name(&self) -> &'static str {
        "work"
    }

    fn summary(&self) -> &'static str {
        "test skill: steps with checkpoints"
    }

    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError> {
        self.starts
            .lock()
            .expect("starts")
            .push(tokio::time::Instant::now());
        let body: serde_json::Value =
            serde_json::from_str(cx.message().body.as_json()).unwrap_or_default();
        let steps = body["steps"].as_u64().unwrap_or(3);
        let fail_first = body["fail_first"].as_u64().unwrap_or(0);
        if (self.starts.lock().expect("starts").len() as u64) <= fail_first {
            return Err(SkillError::new("failing on purpose"));
        }
        let mut done = cx
            .resumed_from()
            .and_then(|c| c["done"].as_u64())
            .unwrap_or(0);
        let ask_at = body["ask_at"].as_u64();
        while done < steps {
            if cx.is_cancelled() {
                return Err(SkillError::interrupted("cancelled"));
            }
            if ask_at == Some(done) {
                cx.request_approval(json!({ "done": done })).await?;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.steps_run.fetch_add(1, Ordering::AcqRel);
            done += 1;
            cx.progress(
                Some((done * 100 / steps) as u8),
                &format!("{done} of {steps}"),
            );
            cx.checkpoint(json!({ "done": done })).await?;
        }
        cx.reply(json!({ "done": done }))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    swarm: Swarm,
    manager: TaskManager,
    steps_run: Arc<AtomicU32>,
    starts: Arc<Mutex<Vec<tokio::time::Instant>>>,
}

/// A swarm with the `work` skill; its own task manager is the one under test. `tweak` changes the defaults.
async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> Fixture {
    let steps_run = Arc::new(AtomicU32::new(0));
    let starts = Arc::new(Mutex::new(Vec::new()));
    let mut skills = SkillRegistry::builtin();
    skills.add(Arc::new(Work {
        steps_run: steps_run.clone(),
        starts: starts.clone(),
    }));
    let store = Store::open(dir.path()).expect("store");
    let mut config = Config::defaults();
    // On the paused clock, time jumps to the next timer whenever the runtime waits for the log's writer thread
    // (every durable change): the retention timer is kept short so that jumps stay short too.
    config.retention.compact_every = Duration::from_millis(10);
    // The automatic journal's writes wait on the log's writer thread too: off, so that only the manager's own
    // durable changes let the paused clock jump.
    config.memory.journal = Vec::new();
    tweak(&mut config);
    let swarm = Swarm::start(config, store.clone(), skills)
        .await
        .expect("swarm");
    let manager = swarm.tasks().clone();
    Fixture {
        _dir: dir,
        swarm,
        manager,
        steps_run,
        starts,
    }
}

/// Stops the fixture's swarm and starts another on the same data directory.
async fn restart(fx: Fixture, tweak: impl FnOnce(&mut Config)) -> Fixture {
    fx.swarm.shutdown(Duration::from_secs(10)).await;
    let Fixture {
        _dir: dir,
        swarm,
        manager,
        ..
    } = fx;
    drop((swarm, manager));
    start_in(dir, tweak).await
}

async fn start() -> Fixture {
    start_in(tempfile::tempdir().expect("temp dir"), |_| {}).await
}

fn work(args: serde_json::Value) -> TaskSpec {
    TaskSpec::new("work", args, 3, Origin::new("console", "console"))
}

/// Polls the task until `pred` holds, on the paused clock (each poll lets 10 ms pass).
async fn until(fx: &Fixture, id: TaskId, what: &str, pred: impl Fn(&Task) -> bool) -> Task {
    for _ in 0..6_000 {
        let task = fx.manager.get(id).await.expect("task");
        if pred(&task) {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id}: {what} within 60 s of tokio time");
}

#[tokio::test(start_paused = true)]
async fn a_task_runs_to_done_with_progress_and_checkpoints_and_its_record_is_durable() {
    let fx = start().await;
    let created = fx
        .manager
        .create(work(json!({"steps": 3})))
        .await
        .expect("create");
    // On an idle swarm a task is placed in the same durable write as its creation.
    assert_eq!(created.status, TaskStatus::Running);
    assert_eq!(created.agent.as_deref(), Some("agent-1"));
    let done = until(&fx, created.id, "done", |t| t.status == TaskStatus::Done).await;
    assert_eq!(done.result, Some(json!({"done": 3})));
    assert_eq!(done.checkpoint, Some(json!({"done": 3})));
    assert_eq!(done.progress.as_ref().map(|p| p.percent), Some(100));
    assert_eq!(done.attempts, 1);
    assert_eq!(fx.steps_run.load(Ordering::Acquire), 3);
    // What the manager answered is what the store holds.
    let stored = TaskStore::open(fx.swarm.ums().store())
        .expect("tasks")
        .load()
        .expect("load");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, TaskStatus::Done);
    assert_eq!(stored[0].result, Some(json!({"done": 3})));
    // Bad input is refused and stores nothing.
    let mut unknown = work(json!({}));
    unknown.skill = "nope".to_string();
    assert_eq!(
        fx.manager.create(unknown).await.expect_err("skill").kind(),
        "unknown_skill"
    );
    let mut cyclic = work(json!({}));
    cyclic.after = vec![TaskId(2)];
    assert_eq!(
        fx.manager.create(cyclic).await.expect_err("cycle").kind(),
        "dependency_cycle"
    );
    assert_eq!(
        fx.manager
            .get(TaskId(99))
            .await
            .expect_err("unknown")
            .kind(),
        "unknown_task"
    );
    assert_eq!(fx.manager.list().await.expect("list").len(), 1);
    fx.manager.shutdown().await.expect("shutdown");
    fx.swarm.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_are_retried_after_the_backoff_on_tokio_time() {
    let fx = start_in(tempfile::tempdir().expect("dir"), |c| {
        c.tasks.backoff_initial = Duration::from_secs(1);
        c.tasks.backoff_max = Duration::from_secs(10);
    })
    .await;
    let created = fx
        .manager
        .create(work(json!({"steps": 1, "fail_first": 2})))
        .await
        .expect("create");
    let done = until(&fx, created.id, "done", |t| t.status == TaskStatus::Done).await;
    assert_eq!(done.attempts, 3);
    let starts = fx.starts.lock().expect("starts").clone();
    assert_eq!(starts.len(), 3);
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // Half to all of 1 s, then of 2 s (plus a few ms of scheduling).
    assert!(
        gaps[0] >= Duration::from_millis(500) && gaps[0] <= Duration::from_millis(1_100),
        "{gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_millis(1_000) && gaps[1] <= Duration::from_millis(2_100),
        "{gaps:?}"
    );
    fx.manager.shutdown().await.expect("shutdown");
    fx.swarm.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn cancel_pause_and_timeout_reach_a_running_skill() {
    let fx = start().await;
    // Cancel: the skill sees it at its next check; the task is cancelled at once.
    let long = fx
        .manager
        .create(work(json!({"steps": 100})))
        .await
        .expect("create");
    until(&fx, long.id, "some progress", |t| t.checkpoint.is_some()).await;
    let cancelled = fx
        .manager
        .control(long.id, Control::Cancel)
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    let ran = fx.steps_run.load(Ordering::Acquire);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        fx.steps_run.load(Ordering::Acquire) <= ran + 1,
        "the skill stopped"
    );
    assert_eq!(
        fx.manager
            .control(long.id, Control::Cancel)
            .await
            .expect_err("again")
            .kind(),
        "task_state"
    );

    // Pause: the running skill stops, the task keeps its checkpoint; resumed, it goes on from there.
    let paused = fx
        .manager
        .create(work(json!({"steps": 10})))
        .await
        .expect("create");
    until(&fx, paused.id, "two steps", |t| {
        t.checkpoint.as_ref().and_then(|c| c["done"].as_u64()) >= Some(2)
    })
    .await;
    fx.manager
        .control(paused.id, Control::Pause)
        .await
        .expect("pause");
    let held = until(&fx, paused.id, "paused", |t| t.status == TaskStatus::Paused).await;
    let at = held
        .checkpoint
        .as_ref()
        .and_then(|c| c["done"].as_u64())
        .expect("done");
    let before = fx.steps_run.load(Ordering::Acquire);
    fx.manager
        .control(paused.id, Control::Resume)
        .await
        .expect("resume");
    let done = until(&fx, paused.id, "done", |t| t.status == TaskStatus::Done).await;
    assert_eq!(done.result, Some(json!({"done": 10})));
    assert_eq!(
        u64::from(fx.steps_run.load(Ordering::Acquire) - before),
        10 - at,
        "no step was run twice"
    );
    assert_eq!(done.attempts, 1, "a pause does not count as an attempt");

    // Timeout: a failed attempt; with one attempt the task fails, saying why.
    let mut slow = work(json!({"steps": 100}));
    slow.timeout_ms = Some(250);
    slow.max_attempts = 1;
    let slow = fx.manager.create(slow).await.expect("create");
    let failed = until(&fx, slow.id, "failed", |t| t.status == TaskStatus::Failed).await;
    assert_eq!(failed.error.as_deref(), Some("timed out after 250 ms"));
    fx.manager.shutdown().await.expect("shutdown");
    fx.swarm.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn approval_and_dependencies_hold_tasks_until_their_turn() {
    let fx = start().await;
    let mut gated = work(json!({"steps": 1}));
    gated.approve = true;
    let gated = fx.manager.create(gated).await.expect("create");
    let mut after = work(json!({"steps": 1}));
    after.after = vec![gated.id];
    let after = fx.manager.create(after).await.expect("create");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        fx.manager.get(gated.id).await.expect("get").status,
        TaskStatus::WaitingApproval
    );
    assert_eq!(
        fx.manager.get(after.id).await.expect("get").status,
        TaskStatus::Queued
    );
    assert_eq!(fx.steps_run.load(Ordering::Acquire), 0);
    fx.manager
        .control(
            gated.id,
            Control::Approve {
                by: "captain".to_string(),
            },
        )
        .await
        .expect("approve");
    until(&fx, after.id, "done", |t| t.status == TaskStatus::Done).await;
    assert_eq!(
        fx.manager.get(gated.id).await.expect("get").status,
        TaskStatus::Done
    );

    let mut rejected = work(json!({"steps": 1}));
    rejected.approve = true;
    let rejected = fx.manager.create(rejected).await.expect("create");
    let mut dependent = work(json!({"steps": 1}));
    dependent.after = vec![rejected.id];
    let dependent = fx.manager.create(dependent).await.expect("create");
    fx.manager
        .control(
            rejected.id,
            Control::Reject {
                by: "captain".to_string(),
            },
        )
        .await
        .expect("reject");
    let failed = fx.manager.get(dependent.id).await.expect("get");
    assert_eq!(failed.status, TaskStatus::Failed);
    assert!(failed
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("rejected by captain"));
    fx.manager.shutdown().await.expect("shutdown");
    fx.swarm.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_a_running_task_resumes_from_its_checkpoint_and_a_finished_one_stays_finished(
) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().to_path_buf();
    let fx = start_in(dir, |_| {}).await;
    let finished = fx
        .manager
        .create(work(json!({"steps": 1})))
        .await
        .expect("create");
    until(&fx, finished.id, "done", |t| t.status == TaskStatus::Done).await;
    let long = fx
        .manager
        .create(work(json!({"steps": 6})))
        .await
        .expect("create");
    let at = until(&fx, long.id, "three steps", |t| {
        t.checkpoint.as_ref().and_then(|c| c["done"].as_u64()) >= Some(3)
    })
    .await;
    let saved = at
        .checkpoint
        .as_ref()
        .and_then(|c| c["done"].as_u64())
        .expect("done");
    // A clean stop interrupts the running task without counting the attempt.
    fx.manager.shutdown().await.expect("shutdown");
    let fx = restart(fx, |_| {}).await;
    assert_eq!(fx._dir.path(), path);
    let done = until(&fx, long.id, "done", |t| t.status == TaskStatus::Done).await;
    assert_eq!(
        u64::from(fx.steps_run.load(Ordering::Acquire)),
        6 - saved,
        "only the steps after the checkpoint ran again"
    );
    assert_eq!(done.attempts, 1);
    assert_eq!(
        fx.starts.lock().expect("starts").len(),
        1,
        "the finished task did not run again"
    );
    fx.manager.shutdown().await.expect("shutdown");
    fx.swarm.shutdown(Duration::from_secs(1)).await;
}

// On the real clock: captain orders wait for the log's writer thread with a deadline, which the paused clock
// would reach early while it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_agent_takes_no_new_tasks_until_it_resumes() {
    let fx = start().await;
    let captain = fx
        .swarm
        .captain_phone(&crate::Principal::new(
            "captain",
            dreamos_runtime::config::Role::Captain,
        ))
        .expect("captain");
    let agent_1 = dreamos_runtime::message::Address::agent(
        &dreamos_runtime::message::AgentName::new("agent-1").expect("name"),
    );
    for name in ["agent-1", "agent-3", "agent-4"] {
        let agent = dreamos_runtime::message::Address::agent(
            &dreamos_runtime::message::AgentName::new(name).expect("name"),
        );
        captain
            .control(agent, crate::ControlVerb::Pause)
            .await
            .expect("pause");
    }
    let first = fx
        .manager
        .create(work(json!({"steps": 5})))
        .await
        .expect("create");
    let second = fx
        .manager
        .create(work(json!({"steps": 1})))
        .await
        .expect("create");
    let running = until(&fx, first.id, "running", |t| {
        t.status == TaskStatus::Running
    })
    .await;
    assert_eq!(running.agent.as_deref(), Some("agent-2"));
    // agent-2 runs one task at a time and the others are paused: the second waits.
    let waiting = fx.manager.get(second.id).await.expect("get");
    assert_eq!(waiting.status, TaskStatus::Queued, "{waiting:?}");
    captain
        .control(agent_1, crate::ControlVerb::Resume)
        .await
        .expect("resume");
    let done = until(&fx, second.id, "done", |t| t.status == TaskStatus::Done).await;
    assert_eq!(done.agent.as_deref(), Some("agent-1"));
    let first = fx.manager.get(first.id).await.expect("get");
    assert_ne!(
        first.status,
        TaskStatus::Done,
        "the second finished on agent-1 while the first still ran"
    );
    fx.swarm.shutdown(Duration::from_secs(10)).await;
}

// On the real clock: the restart waits for the swarm's shutdown with deadlines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_tasks_are_forgotten_beyond_the_retention_bounds_and_ids_are_never_reused() {
    let dir = tempfile::tempdir().expect("dir");
    let fx = start_in(dir, |c| {
        c.retention.tasks_max = 2;
        c.retention.tasks_max_age = Duration::from_secs(3600);
    })
    .await;
    let first = fx
        .manager
        .create(work(json!({"steps": 1})))
        .await
        .expect("create");
    // A finished task that an unfinished one depends on stays whatever the bounds.
    let mut waits = work(json!({"steps": 1}));
    waits.after = vec![first.id];
    waits.approve = true;
    let waiting = fx.manager.create(waits).await.expect("create");
    let mut ids = vec![first.id];
    for _ in 0..3 {
        let task = fx
            .manager
            .create(work(json!({"steps": 1})))
            .await
            .expect("create");
        until(&fx, task.id, "done", |t| t.status == TaskStatus::Done).await;
        ids.push(task.id);
    }
    let mut kept = Vec::new();
    for _ in 0..1_000 {
        kept = fx
            .manager
            .list()
            .await
            .expect("list")
            .into_iter()
            .map(|t| t.id)
            .collect();
        if kept.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(kept, vec![first.id, waiting.id, ids[2], ids[3]]);
    assert_eq!(
        TaskStore::open(fx.swarm.ums().store())
            .expect("store")
            .len(),
        4
    );
    assert_eq!(
        fx.manager.get(first.id).await.expect("kept").status,
        TaskStatus::Done
    );
    assert!(matches!(
        fx.manager.get(ids[1]).await,
        Err(ManagerError::Task(TaskError::UnknownTask(_)))
    ));

    fx.manager
        .control(
            waiting.id,
            Control::Reject {
                by: "captain".into(),
            },
        )
        .await
        .expect("reject");

    // Past the age bound every finished task goes, even the newest; the next id is still new after a restart.
    let fx = restart(fx, |c| {
        c.retention.tasks_max_age = Duration::from_millis(100);
    })
    .await;
    for _ in 0..1_000 {
        if fx.manager.list().await.expect("list").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(fx.manager.list().await.expect("list").is_empty());
    assert!(TaskStore::open(fx.swarm.ums().store())
        .expect("store")
        .is_empty());
    let fx = restart(fx, |_| {}).await;
    let next = fx
        .manager
        .create(work(json!({"steps": 1})))
        .await
        .expect("create");
    assert!(next.id.0 > waiting.id.0, "id {} was reused", next.id);
    fx.swarm.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_skill_that_asks_for_approval_mid_way_waits_and_resumes_from_its_checkpoint() {
    let fx = start().await;
    let task = fx
        .manager
        .create(work(json!({"steps": 4, "ask_at": 2})))
        .await
        .expect("create");
    let waiting = until(&fx, task.id, "waiting for approval", |t| {
        t.status == TaskStatus::WaitingApproval
    })
    .await;
    assert_eq!(waiting.checkpoint, Some(json!({"done": 2})));
    assert_eq!(waiting.attempts, 0, "asking is not a failed attempt");
    assert_eq!(fx.steps_run.load(Ordering::Acquire), 2);
    fx.manager
        .control(
            task.id,
            Control::Approve {
                by: "captain".into(),
            },
        )
        .await
        .expect("approve");
    let done = until(&fx, task.id, "done", |t| t.status == TaskStatus::Done).await;
    assert_eq!(done.result, Some(json!({"done": 4})));
    assert_eq!(
        fx.steps_run.load(Ordering::Acquire),
        4,
        "the steps before the approval did not run again"
    );
    assert_eq!(fx.starts.lock().expect("starts").len(), 2);

    // Rejected mid-way: cancelled, with who said no.
    let second = fx
        .manager
        .create(work(json!({"steps": 2, "ask_at": 1})))
        .await
        .expect("create");
    until(&fx, second.id, "waiting", |t| {
        t.status == TaskStatus::WaitingApproval
    })
    .await;
    let rejected = fx
        .manager
        .control(
            second.id,
            Control::Reject {
                by: "captain".into(),
            },
        )
        .await
        .expect("reject");
    assert_eq!(rejected.status, TaskStatus::Cancelled);
    fx.manager.shutdown().await.expect("shutdown");
    fx.swarm.shutdown(Duration::from_secs(1)).await;
}
