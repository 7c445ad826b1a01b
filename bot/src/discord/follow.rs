//! Task answers that keep up with their task: the message of a `/task` answer is edited as the task moves.
//!
//! One tokio task (the [`Follower`]) holds one subscription to the swarm's events and at most
//! [`MAX_FOLLOWED`] followed messages; a message beyond that is simply not followed, and registrations come
//! through a small bounded channel that never waits (a full one drops the registration). For each followed
//! message it keeps the task as last shown and the newest state seen, and edits the interaction's original
//! response with the newest state at most once a second ([`EDIT_EVERY`]: Discord rate-limits edits of one
//! message), so the last state is always edited. It stops following when the task is final (after showing it),
//! when the interaction's token is near the end of its 15 minutes ([`FOLLOW_FOR`]), or after repeated failed
//! edits. At most one edit per message is in flight, so edits of one message never overtake each other.
//!
//! The catch-up: a task may change between its answer and its registration, so registering asks the manager
//! for the task's state; and when the subscription lags (events dropped), every followed task is asked for
//! again. A state older than the one shown (by `updated_at`, which the scheduler moves forward on every change
//! and progress report) is ignored.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use dreamos_agents::{events::RecvError, Swarm, SwarmEvent};
use dreamos_runtime::task::{Task, TaskId};
use poise::serenity_prelude as serenity;
use serenity::builder::Builder as _;
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

use super::{commands, reply, tasks};
use crate::{
    answer::{Reply, TaskReply},
    session::Answer,
};

/// The most messages followed at once.
pub const MAX_FOLLOWED: usize = 100;
/// The least time between two edits of one message.
pub const EDIT_EVERY: Duration = Duration::from_secs(1);
/// How long a message is followed: an interaction's token lives 15 minutes; the last minute is left as margin.
pub const FOLLOW_FOR: Duration = Duration::from_secs(14 * 60);
/// Failed edits in a row after which a message is no longer followed (deleted, or its token is gone).
const MAX_FAILURES: u32 = 3;
/// Registrations waiting for the follower; it takes them as fast as they come.
const REGISTRATIONS: usize = 32;

/// A message to follow: the interaction whose original response shows the task.
#[derive(Debug, Clone)]
pub struct Follow {
    token: String,
    /// The `/task` subcommand the message answers (`create`, `show`), which picks how the task is shown.
    action: &'static str,
    task: Task,
    /// The interaction came in now: its token's life started.
    since: Instant,
    /// A click on a button: when the task is followed already (its message, most likely), the messages that show
    /// it are edited again with its latest state instead, since the click's update may have landed after them.
    unless_followed: bool,
}

impl Follow {
    /// `since`: when the interaction came in (its token's 15 minutes started then).
    pub fn new(
        token: String,
        action: &'static str,
        task: Task,
        since: Instant,
        unless_followed: bool,
    ) -> Follow {
        Follow {
            token,
            action,
            task,
            since,
            unless_followed,
        }
    }
}

/// The handle: registers messages to follow. Cheap to clone.
#[derive(Clone)]
pub struct Follower {
    tx: mpsc::Sender<Follow>,
}

impl Follower {
    /// Starts following the swarm's task events (subscribed before this returns) until `stop` turns true or the
    /// swarm is gone.
    pub fn spawn(
        http: Arc<serenity::Http>,
        swarm: Swarm,
        stop: watch::Receiver<bool>,
    ) -> (Follower, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(REGISTRATIONS);
        let events = swarm.subscribe();
        let (done_tx, done_rx) = mpsc::channel(MAX_FOLLOWED);
        let worker = Worker {
            http,
            swarm,
            entries: BTreeMap::new(),
            next_key: 0,
            done_tx,
        };
        let task = tokio::spawn(worker.run(rx, events, done_rx, stop));
        (Follower { tx }, task)
    }

    /// Follows the message unless the follower is busy (it then stays as answered, and this is false). Never
    /// waits.
    pub fn follow(&self, follow: Follow) -> bool {
        match self.tx.try_send(follow) {
            Ok(()) => true,
            Err(err) => {
                tracing::debug!(error = %err, "a task's message is not followed");
                false
            }
        }
    }
}

/// The message showing `task` after `action`.
pub fn message(action: &'static str, task: &Task) -> reply::DiscordMessage {
    reply::answer(&Answer {
        command: "task".to_string(),
        result: Ok(Reply::Task(TaskReply {
            action,
            task: task.clone(),
        })),
    })
}

struct Entry {
    token: String,
    action: &'static str,
    id: TaskId,
    /// What the message shows, or is being edited to show.
    shown: Arc<Task>,
    /// A newer state to show.
    pending: Option<Arc<Task>>,
    last_edit: Option<Instant>,
    in_flight: bool,
    failures: u32,
    until: Instant,
}

impl Entry {
    fn latest(&self) -> &Arc<Task> {
        self.pending.as_ref().unwrap_or(&self.shown)
    }

    /// When the pending state may be edited in (`now` when the message was never edited).
    fn due(&self, now: Instant) -> Option<Instant> {
        if self.in_flight || self.pending.is_none() {
            return None;
        }
        Some(self.last_edit.map_or(now, |t| t + EDIT_EVERY))
    }

    /// Takes a newer state of its task.
    fn offer(&mut self, task: &Arc<Task>) {
        let latest = self.latest();
        if task.updated_at < latest.updated_at || **task == **latest {
            return;
        }
        self.pending = Some(task.clone());
    }
}

/// An edit that finished: the entry's key and whether it succeeded.
type Done = (u64, bool);

struct Worker {
    http: Arc<serenity::Http>,
    swarm: Swarm,
    entries: BTreeMap<u64, Entry>,
    next_key: u64,
    done_tx: mpsc::Sender<Done>,
}

impl Worker {
    async fn run(
        mut self,
        mut registrations: mpsc::Receiver<Follow>,
        mut events: dreamos_agents::events::EventReceiver,
        mut done: mpsc::Receiver<Done>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let now = Instant::now();
            let wake = self
                .entries
                .values()
                .map(|e| e.due(now).map_or(e.until, |due| due.min(e.until)))
                .min();
            tokio::select! {
                _ = stop.changed() => break,
                follow = registrations.recv() => match follow {
                    Some(follow) => self.add(follow).await,
                    None => break,
                },
                event = events.recv() => match event {
                    Ok(SwarmEvent::Task(task)) => self.offer(&task),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => self.refresh().await,
                    Err(RecvError::Closed) => break,
                },
                Some((key, ok)) = done.recv() => self.edited(key, ok),
                _ = sleep_until(wake) => {}
            }
            self.tick();
        }
    }

    async fn add(&mut self, follow: Follow) {
        let id = follow.task.id;
        let followed = self.entries.values().any(|e| e.id == id);
        if follow.unless_followed && followed {
            for entry in self.entries.values_mut().filter(|e| e.id == id) {
                if entry.pending.is_none() {
                    entry.pending = Some(entry.shown.clone());
                }
            }
        } else if follow.task.status.is_final() {
            // Nothing more will happen to it.
            return;
        } else if self.entries.len() >= MAX_FOLLOWED {
            tracing::debug!(task = %id, followed = MAX_FOLLOWED, "following as many task messages as allowed; this one stays as answered");
            return;
        } else {
            let key = self.next_key;
            self.next_key += 1;
            self.entries.insert(
                key,
                Entry {
                    token: follow.token,
                    action: follow.action,
                    id,
                    shown: Arc::new(follow.task),
                    pending: None,
                    last_edit: None,
                    in_flight: false,
                    failures: 0,
                    until: follow.since + FOLLOW_FOR,
                },
            );
        }
        // What happened between the answer and now.
        if let Ok(task) = self.swarm.tasks().get(id).await {
            self.offer(&Arc::new(task));
        }
    }

    fn offer(&mut self, task: &Arc<Task>) {
        for entry in self.entries.values_mut().filter(|e| e.id == task.id) {
            entry.offer(task);
        }
    }

    /// Events were dropped: asks the manager for every followed task.
    async fn refresh(&mut self) {
        let ids: std::collections::BTreeSet<TaskId> = self.entries.values().map(|e| e.id).collect();
        for id in ids {
            if let Ok(task) = self.swarm.tasks().get(id).await {
                self.offer(&Arc::new(task));
            }
        }
    }

    fn edited(&mut self, key: u64, ok: bool) {
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        entry.in_flight = false;
        if ok {
            entry.failures = 0;
        } else {
            entry.failures += 1;
            if entry.failures >= MAX_FAILURES {
                tracing::debug!(task = %entry.id, "no longer following a task's message that could not be edited");
                self.entries.remove(&key);
                return;
            }
            // Try the newest state again at the next turn.
            if entry.pending.is_none() {
                entry.pending = Some(entry.shown.clone());
            }
        }
        if entry.pending.is_none() && entry.shown.status.is_final() {
            self.entries.remove(&key);
        }
    }

    /// Starts the edits that are due and forgets the messages whose time is up.
    fn tick(&mut self) {
        let now = Instant::now();
        // A message stops being followed once it shows its final task (entries start with a task that is not), or
        // when its token is about to expire.
        self.entries.retain(|_, e| {
            now < e.until && !(e.shown.status.is_final() && e.pending.is_none() && !e.in_flight)
        });
        for (key, entry) in &mut self.entries {
            if entry.due(now).is_none_or(|due| due > now) {
                continue;
            }
            let Some(task) = entry.pending.take() else {
                continue;
            };
            entry.shown = task.clone();
            entry.in_flight = true;
            entry.last_edit = Some(now);
            let message = message(entry.action, &task);
            let edit = commands::edit_builder(&message).components(tasks::components(&message));
            let http = self.http.clone();
            let token = entry.token.clone();
            let done = self.done_tx.clone();
            let key = *key;
            tokio::spawn(async move {
                let ok = match edit.execute(&http, &token).await {
                    Ok(_) => true,
                    Err(err) => {
                        tracing::debug!(error = %err, "could not edit a task's message");
                        false
                    }
                };
                let _ = done.send((key, ok)).await;
            });
        }
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use dreamos_runtime::{
        message::Millis,
        task::{Origin, Progress, TaskSpec, TaskStatus},
    };

    use super::*;

    fn task(status: TaskStatus, updated: u64) -> Arc<Task> {
        let mut task = Task::new(
            TaskId(7),
            TaskSpec {
                title: "nap".to_string(),
                approve: status == TaskStatus::WaitingApproval,
                ..TaskSpec::new(
                    "fault",
                    serde_json::json!({}),
                    1,
                    Origin::new("user:console", "console"),
                )
            },
            Millis(0),
        );
        task.status = status;
        task.updated_at = Millis(updated);
        Arc::new(task)
    }

    fn entry(shown: Arc<Task>) -> Entry {
        Entry {
            token: "t".to_string(),
            action: "create",
            id: shown.id,
            shown,
            pending: None,
            last_edit: None,
            in_flight: false,
            failures: 0,
            until: Instant::now() + FOLLOW_FOR,
        }
    }

    #[test]
    fn only_newer_states_are_taken_and_the_newest_wins() {
        let mut e = entry(task(TaskStatus::Running, 10));
        e.offer(&task(TaskStatus::Queued, 5));
        e.offer(&task(TaskStatus::Running, 10));
        assert!(e.pending.is_none(), "older or the same: nothing to edit");
        let mut progressed = (*task(TaskStatus::Running, 10)).clone();
        progressed.progress = Some(Progress {
            percent: 50,
            line: "half".to_string(),
        });
        e.offer(&Arc::new(progressed));
        assert!(e.pending.is_some(), "the same time, but a new state");
        e.offer(&task(TaskStatus::Done, 20));
        e.offer(&task(TaskStatus::Running, 15));
        assert_eq!(e.pending.as_ref().map(|t| t.status), Some(TaskStatus::Done));
    }

    #[test]
    fn edits_of_one_message_are_a_second_apart_and_never_overlap() {
        let now = Instant::now();
        let mut e = entry(task(TaskStatus::Queued, 1));
        assert_eq!(e.due(now), None, "nothing to show");
        e.offer(&task(TaskStatus::Running, 2));
        assert_eq!(e.due(now), Some(now), "never edited: at once");
        e.last_edit = Some(now);
        assert_eq!(e.due(now), Some(now + EDIT_EVERY));
        e.in_flight = true;
        assert_eq!(e.due(now), None, "one edit in flight at a time");
    }

    /// A real swarm and the fake Discord: 101 messages of waiting tasks; the first 100 are followed to the end
    /// of their tasks, the last one is never edited.
    #[test]
    fn beyond_the_bound_a_message_is_not_followed_and_the_followed_ones_end_with_their_task() {
        use dreamos_tests::fake_discord::{FakeDiscord, APPLICATION_ID};
        // The fake runs its own runtime, so it is started and dropped outside the test's.
        let fake = FakeDiscord::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let edited_to_done = |token: &str| {
            let path = format!("/webhooks/{APPLICATION_ID}/{token}/messages/@original");
            fake.count(|r| {
                r.method == "PATCH"
                    && r.path == path
                    && r.body["content"]
                        .as_str()
                        .is_some_and(|c| c.contains("[done]"))
            })
        };
        runtime.block_on(async {
            let config = dreamos_runtime::config::Config::defaults();
            let store = dreamos_runtime::Store::open(dir.path()).expect("store");
            let swarm = Swarm::start(config, store, dreamos_agents::SkillRegistry::builtin())
                .await
                .expect("swarm");
            let http = Arc::new(
                serenity::HttpBuilder::new("token")
                    .proxy(fake.base_url.clone())
                    .ratelimiter_disabled(true)
                    .application_id(serenity::ApplicationId::new(APPLICATION_ID))
                    .build(),
            );
            let (stop_tx, stop_rx) = watch::channel(false);
            let (follower, following) = Follower::spawn(http, swarm.clone(), stop_rx);
            let mut ids = Vec::new();
            for i in 0..=MAX_FOLLOWED {
                let created = swarm
                    .tasks()
                    .create(TaskSpec {
                        title: format!("gated {i}"),
                        approve: true,
                        ..TaskSpec::new(
                            "ping",
                            serde_json::json!({ "text": "hi" }),
                            1,
                            Origin::new("discord.1.2", "discord"),
                        )
                    })
                    .await
                    .expect("created");
                ids.push(created.id);
                let follow = Follow::new(format!("t{i}"), "create", created, Instant::now(), false);
                // Registrations are taken as fast as they come; a burst beyond the channel is dropped, so the
                // test hands them over one at a time.
                while !follower.follow(follow.clone()) {
                    tokio::task::yield_now().await;
                }
            }
            for id in &ids {
                swarm
                    .tasks()
                    .control(
                        *id,
                        dreamos_agents::tasks::Control::Approve {
                            by: "discord.1.2".to_string(),
                        },
                    )
                    .await
                    .expect("approved");
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while (0..MAX_FOLLOWED).any(|i| edited_to_done(&format!("t{i}")) == 0) {
                assert!(
                    Instant::now() < deadline,
                    "not every followed message was edited to its task's end"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = stop_tx.send(true);
            let _ = following.await;
            swarm.shutdown(Duration::from_secs(5)).await;
        });
        drop(runtime);
        let beyond = format!("t{MAX_FOLLOWED}");
        assert_eq!(
            fake.count(|r| r.path.contains(&format!("/{beyond}/"))),
            0,
            "the message beyond the bound was edited"
        );
    }

    #[test]
    fn the_message_shows_the_task_and_its_buttons_only_while_it_waits() {
        let waiting = message("create", &task(TaskStatus::WaitingApproval, 1));
        assert!(
            waiting
                .content
                .starts_with("created task 7 [waiting_approval] nap"),
            "{waiting:?}"
        );
        assert_eq!(waiting.approval, Some(TaskId(7)));
        assert_eq!(tasks::components(&waiting).len(), 1);
        let done = message("create", &task(TaskStatus::Done, 2));
        assert_eq!(done.approval, None);
        assert!(tasks::components(&done).is_empty());
    }
}
