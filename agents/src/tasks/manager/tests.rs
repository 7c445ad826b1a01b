//! The task manager with a real swarm (sled in a temp dir, the real log) on tokio's paused clock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use dreamos_runtime::config::Config;
use dreamos_runtime::message::Priority;
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
        while done < steps {
            if cx.is_cancelled() {
                return Err(SkillError::interrupted("cancelled"));
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

async fn start_in(dir: tempfile::TempDir, config: TaskConfig) -> Fixture {
    let steps_run = Arc::new(AtomicU32::new(0));
    let starts = Arc::new(Mutex::new(Vec::new()));
    let mut skills = SkillRegistry::builtin();
    skills.add(Arc::new(Work {
        steps_run: steps_run.clone(),
        starts: starts.clone(),
    }));
    let store = Store::open(dir.path()).expect("store");
    let swarm = Swarm::start(Config::defaults(), store.clone(), skills)
        .await
        .expect("swarm");
    let manager = TaskManager::start(
        TaskStore::open(&store).expect("tasks"),
        swarm.ums().clone(),
        Arc::new(swarm.skills().clone()),
        vec![
            ("agent-1".to_string(), vec!["*".to_string()]),
            ("agent-2".to_string(), vec!["*".to_string()]),
        ],
        config,
    )
    .await
    .expect("manager");
    Fixture {
        _dir: dir,
        swarm,
        manager,
        steps_run,
        starts,
    }
}

async fn start() -> Fixture {
    start_in(
        tempfile::tempdir().expect("temp dir"),
        TaskConfig::default(),
    )
    .await
}

fn work(args: serde_json::Value) -> TaskSpec {
    TaskSpec {
        title: "work".to_string(),
        skill: "work".to_string(),
        args,
        priority: Priority::Normal,
        after: Vec::new(),
        timeout_ms: None,
        max_attempts: 3,
        approve: false,
        origin: Origin {
            by: "console".to_string(),
            frontend: "console".to_string(),
        },
    }
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
    let config = TaskConfig {
        backoff: Backoff {
            initial_ms: 1_000,
            max_ms: 10_000,
        },
        ..TaskConfig::default()
    };
    let fx = start_in(tempfile::tempdir().expect("dir"), config).await;
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
    let fx = start_in(dir, TaskConfig::default()).await;
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
    fx.swarm.shutdown(Duration::from_secs(1)).await;
    let Fixture {
        _dir: dir,
        swarm,
        manager,
        ..
    } = fx;
    drop((swarm, manager));
    let fx = start_in(dir, TaskConfig::default()).await;
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
