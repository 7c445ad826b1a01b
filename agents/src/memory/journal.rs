//! The automatic journal: the swarm writes down what happens to it, in sentences a person would write.
//!
//! Most of it follows the event bus (its own subscription, bounded like every other; events it misses because
//! it fell behind are counted in an entry of their own): a dead letter and why, an agent marked failed, an agent
//! restarted by its supervisor, a task created, done, failed or cancelled, and the acknowledgements of a
//! broadcast. What has no event is told directly: a person's agent command (`Swarm`), a broadcast being sent
//! (`CaptainPhone`), an indexing run (the `scan` skill). Which of these are written is `[memory] journal`.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::Duration,
};

use dreamos_runtime::{
    config::JournalTopic,
    memory::Links,
    message::{Address, MessageId},
    task::{Task, TaskId, TaskStatus},
};
use tokio::sync::mpsc;

use super::Memory;
use crate::events::{EventReceiver, RecvError, SwarmEvent};

/// Broadcasts waiting for their acknowledgements, at most; a further one is written at once.
const MAX_TRACKED: usize = 1024;
/// Tasks whose end was journaled, remembered so that a repeated event writes nothing.
const MAX_ENDED: usize = 4096;
/// Replies to messages not tracked, remembered (the latest, at most): a broadcast's acknowledgements can reach the
/// journaler before the broadcast does. They come on the event bus, the broadcast on a channel of its own, and
/// [`Memory::broadcast_sent`] is called only once the send returned, when agents may have answered already.
const MAX_EARLY: usize = 4096;

/// A broadcast whose acknowledgements the journal counts.
#[derive(Debug, Clone)]
pub struct Broadcast {
    pub id: MessageId,
    pub by: String,
    pub to: Address,
    pub text: String,
    pub recipients: Vec<String>,
}

struct Tracked {
    broadcast: Broadcast,
    acked: BTreeSet<String>,
    deadline: tokio::time::Instant,
}

impl Memory {
    /// Starts the journaler on `events` (a subscription of its own). Its broadcast channel closes with the memory.
    pub fn start_journal(&self, events: EventReceiver, window: Duration) {
        let (tx, rx) = mpsc::channel(MAX_TRACKED);
        *self.inner.broadcasts.lock() = Some(tx);
        let memory = self.clone();
        let task = tokio::spawn(async move {
            Journaler {
                memory,
                tracked: BTreeMap::new(),
                ended: VecDeque::new(),
                early: VecDeque::new(),
                window,
            }
            .run(events, rx)
            .await
        });
        *self.inner.journaler.lock() = Some(task);
    }

    /// A broadcast went out: its entry is written once every recipient acknowledged it or the window passed.
    pub fn broadcast_sent(&self, broadcast: Broadcast) {
        if !self.journals(JournalTopic::Broadcasts) {
            return;
        }
        let tx = self.inner.broadcasts.lock().clone();
        if let Some(tx) = tx {
            if let Err(mpsc::error::TrySendError::Full(b)) = tx.try_send(broadcast) {
                // Too many waiting: write it now, without the count.
                let text = broadcast_text(&b, None);
                self.note(
                    JournalTopic::Broadcasts,
                    &["broadcast"],
                    text,
                    broadcast_links(&b),
                );
            }
        }
    }

    /// A person's agent command: `agent-2 stopped by console`.
    pub fn agent_changed(&self, agent: &str, what: &str, by: &str) {
        self.note(
            JournalTopic::Agents,
            &["agent", what],
            format!("{agent} {what} by {by}"),
            Links {
                agents: vec![agent.to_string()],
                ..Links::default()
            },
        );
    }
}

struct Journaler {
    memory: Memory,
    tracked: BTreeMap<MessageId, Tracked>,
    ended: VecDeque<TaskId>,
    /// (replied-to message, who replied) of replies to untracked messages, oldest first; see [`MAX_EARLY`].
    early: VecDeque<(MessageId, String)>,
    window: Duration,
}

impl Journaler {
    async fn run(mut self, mut events: EventReceiver, mut broadcasts: mpsc::Receiver<Broadcast>) {
        loop {
            let next_deadline = self.tracked.values().map(|t| t.deadline).min();
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => self.on_event(&event),
                    Err(RecvError::Lagged(n)) => self.memory.note(
                        JournalTopic::Agents,
                        &["journal"],
                        format!("the journal missed {n} swarm events: it fell behind a busy swarm"),
                        Links::default(),
                    ),
                    Err(RecvError::Closed) => break,
                },
                b = broadcasts.recv() => match b {
                    Some(b) => self.track(b),
                    None => {
                        // The memory is closing: write what was waiting.
                        let ids: Vec<MessageId> = self.tracked.keys().copied().collect();
                        for id in ids {
                            self.finish(id);
                        }
                        break;
                    }
                },
                _ = sleep_until(next_deadline) => {
                    let now = tokio::time::Instant::now();
                    let due: Vec<MessageId> = self
                        .tracked
                        .iter()
                        .filter(|(_, t)| t.deadline <= now)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in due {
                        self.finish(id);
                    }
                }
            }
        }
    }

    fn track(&mut self, broadcast: Broadcast) {
        if broadcast.recipients.is_empty() {
            let id = broadcast.id;
            self.tracked.insert(
                id,
                Tracked {
                    broadcast,
                    acked: BTreeSet::new(),
                    deadline: tokio::time::Instant::now(),
                },
            );
            self.finish(id);
            return;
        }
        // Acknowledgements that came first.
        let id = broadcast.id;
        let acked: BTreeSet<String> = self
            .early
            .iter()
            .filter(|(to, from)| *to == id && broadcast.recipients.contains(from))
            .map(|(_, from)| from.clone())
            .collect();
        self.early.retain(|(to, _)| *to != id);
        let all = acked.len() == broadcast.recipients.len();
        self.tracked.insert(
            id,
            Tracked {
                broadcast,
                acked,
                deadline: tokio::time::Instant::now() + self.window,
            },
        );
        if all {
            self.finish(id);
        }
    }

    fn finish(&mut self, id: MessageId) {
        if let Some(t) = self.tracked.remove(&id) {
            let text = broadcast_text(&t.broadcast, Some(&t.acked));
            self.memory.note(
                JournalTopic::Broadcasts,
                &["broadcast"],
                text,
                broadcast_links(&t.broadcast),
            );
        }
    }

    fn on_event(&mut self, event: &SwarmEvent) {
        match event {
            SwarmEvent::Message(m) => {
                let envelope = &m.envelope;
                if let Some(reply_to) = envelope.reply_to {
                    let from = envelope.from.to_string();
                    if let Some(t) = self.tracked.get_mut(&reply_to) {
                        if t.broadcast.recipients.contains(&from) {
                            t.acked.insert(from);
                            if t.acked.len() == t.broadcast.recipients.len() {
                                self.finish(reply_to);
                            }
                        }
                    } else {
                        if self.early.len() == MAX_EARLY {
                            self.early.pop_front();
                        }
                        self.early.push_back((reply_to, from));
                    }
                    return;
                }
                let data: serde_json::Value =
                    serde_json::from_str(envelope.body.as_json()).unwrap_or_default();
                let text = envelope.body.text_field().unwrap_or_default();
                match &*envelope.kind {
                    "notice.dead_letter" => {
                        let agent = data["agent"].as_str().unwrap_or("?").to_string();
                        let message = data["id"].as_str().and_then(|s| s.parse().ok());
                        let attempts = data["attempts"].as_u64().unwrap_or(0);
                        let error = data["error"].as_str().unwrap_or("").to_string();
                        self.memory.note(
                            JournalTopic::DeadLetters,
                            &["dead_letter"],
                            format!(
                                "a message for {agent} went to dead letters after {attempts} {}: {error}",
                                if attempts == 1 { "attempt" } else { "attempts" }
                            ),
                            Links {
                                messages: message
                                    .map(dreamos_runtime::message::MessageId)
                                    .into_iter()
                                    .chain(std::iter::once(envelope.id))
                                    .collect(),
                                agents: vec![agent],
                                ..Links::default()
                            },
                        );
                    }
                    "notice.agent_failed" => {
                        let agent = data["agent"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| envelope.from.to_string());
                        self.memory.note(
                            JournalTopic::Agents,
                            &["agent", "failed"],
                            format!("{agent} was marked failed: {text}"),
                            Links {
                                messages: vec![envelope.id],
                                agents: vec![agent],
                                ..Links::default()
                            },
                        );
                    }
                    _ => {}
                }
            }
            SwarmEvent::AgentRestarted {
                agent,
                restarts,
                reason,
            } => self.memory.note(
                JournalTopic::Agents,
                &["agent", "restarted"],
                format!("{agent} crashed and was restarted by its supervisor (restart {restarts}): {reason}"),
                Links {
                    agents: vec![agent.to_string()],
                    ..Links::default()
                },
            ),
            SwarmEvent::Task(task) => self.on_task(task),
            SwarmEvent::Progress { .. } | SwarmEvent::Fatal { .. } => {}
        }
    }

    fn on_task(&mut self, task: &Task) {
        // Its creation is journaled by the task manager once it is durable (an event may show it already placed).
        let links = Links {
            tasks: vec![task.id],
            agents: task.agent.iter().cloned().collect(),
            ..Links::default()
        };
        if !task.status.is_final() || self.ended.contains(&task.id) {
            return;
        }
        if self.ended.len() == MAX_ENDED {
            self.ended.pop_front();
        }
        self.ended.push_back(task.id);
        let by = task
            .agent
            .as_deref()
            .map(|a| format!(" on {a}"))
            .unwrap_or_default();
        let (tag, text) = match task.status {
            TaskStatus::Done => (
                "done",
                format!(
                    "task {} ({}) done{by}: {}",
                    task.id,
                    task.title,
                    one_line(task.result.as_ref())
                ),
            ),
            TaskStatus::Failed => (
                "failed",
                format!(
                    "task {} ({}) failed{by} after {} {}: {}",
                    task.id,
                    task.title,
                    task.attempts,
                    if task.attempts == 1 {
                        "attempt"
                    } else {
                        "attempts"
                    },
                    task.error.as_deref().unwrap_or("no error given")
                ),
            ),
            _ => (
                "cancelled",
                format!(
                    "task {} ({}) cancelled{}",
                    task.id,
                    task.title,
                    task.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
            ),
        };
        self.memory
            .note(JournalTopic::Tasks, &["task", tag], text, links);
    }
}

/// A task's result as one short line: its `summary` or `text` when it has one, else its JSON, clipped.
fn one_line(result: Option<&serde_json::Value>) -> String {
    let Some(result) = result else {
        return "no result".to_string();
    };
    let text = ["summary", "text", "line"]
        .iter()
        .find_map(|k| result.get(k).and_then(|v| v.as_str()).map(str::to_string))
        .unwrap_or_else(|| match result {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line
    }
}

fn broadcast_text(b: &Broadcast, acked: Option<&BTreeSet<String>>) -> String {
    let order: String = if b.text.chars().count() > 120 {
        format!("{}…", b.text.chars().take(120).collect::<String>())
    } else {
        b.text.clone()
    };
    let n = b.recipients.len();
    let head = format!(
        "{} broadcast \"{order}\" to {} ({n} {})",
        b.by,
        b.to,
        if n == 1 { "agent" } else { "agents" }
    );
    match acked {
        None => format!("{head}; its acknowledgements were not counted"),
        Some(acked) if acked.len() == n => format!("{head}: all {n} acknowledged"),
        Some(acked) => {
            let missing: Vec<&str> = b
                .recipients
                .iter()
                .filter(|r| !acked.contains(*r))
                .map(String::as_str)
                .collect();
            format!(
                "{head}: {} of {n} acknowledged; no answer from {}",
                acked.len(),
                missing.join(", ")
            )
        }
    }
}

fn broadcast_links(b: &Broadcast) -> Links {
    Links {
        messages: vec![b.id],
        agents: b.recipients.clone(),
        ..Links::default()
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dreamos_runtime::{
        log::StoredMessage,
        message::{AgentName, Body, Envelope},
        Config, Store,
    };

    use super::*;
    use crate::{skill::SkillRegistry, Swarm};

    fn reply(from: &str, to: MessageId) -> SwarmEvent {
        let envelope = Envelope::new(
            Address::agent(&AgentName::new(from).expect("name")),
            Address::user("console"),
            crate::REPLY_KIND,
            Body::text("acknowledged"),
        )
        .with_reply_to(to);
        SwarmEvent::Message(Arc::new(StoredMessage {
            envelope,
            recipients: Vec::new(),
        }))
    }

    /// The race seen in CI: both agents answered before the journaler took the broadcast in. Its entry is written
    /// at once, counting both, instead of waiting out the window and naming them as silent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acknowledgements_that_come_before_their_broadcast_are_counted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::defaults();
        config.memory.journal = vec![JournalTopic::Broadcasts];
        config.scanner.allowed_roots = vec![dir.path().to_path_buf()];
        let store = Store::open(&dir.path().join("data")).expect("store");
        let swarm = Swarm::start(config, store, SkillRegistry::builtin())
            .await
            .expect("swarm");
        let mut journaler = Journaler {
            memory: swarm.memory().clone(),
            tracked: BTreeMap::new(),
            ended: VecDeque::new(),
            early: VecDeque::new(),
            window: Duration::from_secs(3600),
        };
        let (id, other) = (MessageId::new(), MessageId::new());
        journaler.on_event(&reply("agent-1", id));
        journaler.on_event(&reply("agent-3", other));
        journaler.on_event(&reply("agent-2", id));
        journaler.track(Broadcast {
            id,
            by: "user:console".to_string(),
            to: Address::All,
            text: "early birds".to_string(),
            recipients: vec!["agent-1".to_string(), "agent-2".to_string()],
        });
        assert!(journaler.tracked.is_empty(), "still waiting for the window");
        assert_eq!(
            journaler.early.len(),
            1,
            "the other reply is still remembered"
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let entry = loop {
            let page = swarm
                .memory()
                .journal(&super::super::JournalQuery {
                    limit: 100,
                    ..Default::default()
                })
                .expect("journal");
            if let Some(e) = page
                .entries
                .into_iter()
                .find(|e| e.text.contains("early birds"))
            {
                break e;
            }
            assert!(tokio::time::Instant::now() < deadline, "no entry");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(entry.text.contains("all 2 acknowledged"), "{}", entry.text);
        swarm.shutdown(Duration::from_secs(5)).await;
    }
}
