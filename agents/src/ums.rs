//! The UnifiedMessageSystem: validates and addresses every message, has the log accept it, routes it to mailboxes,
//! and records what agents made of it.
//!
//! The path of a message: a phone calls [`Ums::send`] → [`Ums::prepare`] checks the body and resolves the address
//! to recipient agents (groups and broadcasts filtered by subscription) → the log accepts it durably → the log's
//! completer hands the commit to the [`Router`], which pushes a [`Delivery`] into each recipient's
//! [`Mailbox`] and tells frontends about messages addressed to people. Before a skill runs, the agent has the
//! attempt recorded durably ([`Ums::begin`]); when it is done it calls [`Ums::handled`] (the acknowledgement and
//! the handler's outputs in one commit) or [`Ums::failed`] (a retry, or a dead letter together with the captain's
//! notice).
//!
//! Overload is refused before acceptance: each agent owes verdicts on at most `messages.max_queued` cell messages
//! and `messages.max_queued_orders` captain orders (queued, in flight, or accepted and on their way), whatever its
//! state, and a send beyond that gets [`Error::Overloaded`] with nothing stored. The log bounds its own queue in
//! bytes.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use dreamos_runtime::{
    config::MessagesConfig,
    log::{
        Accepted, CommitSink, Committed, MessageLog, Outcome, Recovery, Resolution, StoredMessage,
    },
    message::{
        check_kind, Address, AgentName, Body, Channel, Envelope, MessageId, Millis, Priority, Seq,
    },
    Store,
};
use parking_lot::RwLock;
use serde_json::json;
use tokio::sync::{oneshot, Notify};

use crate::{
    error::{Error, Result},
    events::{EventBus, EventReceiver, SwarmEvent},
    mailbox::{Delivery, Mailbox},
    stats::{AgentSnapshot, AgentStats, AgentStatus},
    REPLY_KIND,
};

/// Control verbs and orders the CaptainPhone sends; every agent understands them without a skill.
pub const CAPTAIN_KINDS: [&str; 5] = ["order", "pause", "resume", "stop", "report"];

/// Who an agent is, as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// Expanded skill names (no `*`).
    pub skills: Vec<String>,
    pub groups: Vec<String>,
    /// Kinds taken from group and all-agent messages: `*`, an exact kind, or a prefix such as `task.*`.
    pub subscribe: Vec<String>,
}

impl AgentSpec {
    fn has_skill(&self, kind: &str) -> bool {
        kind == REPLY_KIND || self.skills.iter().any(|s| s == kind)
    }

    fn subscribes(&self, kind: &str) -> bool {
        self.subscribe.iter().any(|pattern| {
            pattern == "*"
                || pattern == kind
                || pattern
                    .strip_suffix('*')
                    .is_some_and(|prefix| kind.starts_with(prefix))
        })
    }
}

/// Everything the swarm keeps per agent, across restarts of its actor.
#[derive(Debug)]
pub struct AgentEntry {
    pub name: AgentName,
    pub mailbox: Mailbox,
    pub stats: AgentStats,
    pub spec: RwLock<AgentSpec>,
    /// Sends admitted for this agent and not yet routed to its mailbox: (cell messages, captain orders).
    reserved: (AtomicUsize, AtomicUsize),
}

impl AgentEntry {
    pub fn snapshot(&self) -> AgentSnapshot {
        let spec = self.spec.read();
        AgentSnapshot {
            name: self.name.to_string(),
            status: self.stats.status(),
            skills: spec.skills.clone(),
            groups: spec.groups.clone(),
            subscribe: spec.subscribe.clone(),
            queue: self.mailbox.depth(),
            handled: self.stats.handled(),
            failed: self.stats.failed(),
            restarts: self.stats.restarts(),
            last_seen: self.stats.last_seen().map(|m| m.rfc3339()),
        }
    }
}

/// The agents by name: the router's address book.
pub type Directory = RwLock<BTreeMap<AgentName, Arc<AgentEntry>>>;

/// What a sender gets back once its message is accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    pub id: MessageId,
    pub seq: Seq,
    pub to: Address,
    pub recipients: Vec<AgentName>,
    pub accepted_at: dreamos_runtime::message::Millis,
}

impl ReplyWaiter {
    /// The reply, or `None` when `timeout` passes first.
    pub async fn wait(mut self, timeout: std::time::Duration) -> Option<Arc<StoredMessage>> {
        tokio::time::timeout(timeout, &mut self.rx)
            .await
            .ok()
            .and_then(|r| r.ok())
    }
}

/// The UnifiedMessageSystem. Cheap to clone.
#[derive(Clone)]
pub struct Ums {
    inner: Arc<UmsInner>,
}

struct UmsInner {
    log: MessageLog,
    store: Store,
    router: Arc<Router>,
    config: MessagesConfig,
    accepting: AtomicBool,
    /// Dreamscribe, once the swarm has opened it (skills reach it through their context).
    memory: std::sync::OnceLock<crate::memory::Memory>,
}

/// Turns commits into deliveries. Runs on the log's completer task, before senders are answered, so it only pushes
/// and notifies.
pub struct Router {
    directory: Arc<Directory>,
    events: EventBus,
    /// Signalled whenever an agent runs out of work, for [`Ums::drain`].
    idle: Notify,
    /// Why the store failed, once it has; frontends watch it to stop the process.
    fatal: tokio::sync::watch::Sender<Option<String>>,
    /// Skills awaiting the reply to a message they sent (see [`Ums::expect_reply`]), at most [`MAX_WAITERS`].
    waiters: parking_lot::Mutex<HashMap<MessageId, oneshot::Sender<Arc<StoredMessage>>>>,
}

/// Replies awaited at once, at most.
pub const MAX_WAITERS: usize = 1_024;

/// The reply to one message, awaited; dropping it stops waiting.
pub struct ReplyWaiter {
    router: Arc<Router>,
    id: MessageId,
    rx: oneshot::Receiver<Arc<StoredMessage>>,
}

impl Drop for ReplyWaiter {
    fn drop(&mut self) {
        self.router.waiters.lock().remove(&self.id);
    }
}

impl Router {
    pub fn new(directory: Arc<Directory>, events: EventBus) -> Router {
        Router {
            directory,
            events,
            idle: Notify::new(),
            fatal: tokio::sync::watch::channel(None).0,
            waiters: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// Delivers accepted messages to their recipients' mailboxes, and messages for people to the frontends.
    pub fn route(&self, messages: &[Arc<StoredMessage>]) {
        let directory = self.directory.read();
        for message in messages {
            for recipient in &message.recipients {
                match directory.get(recipient) {
                    Some(entry) => entry.mailbox.push(Delivery::new(message.clone())),
                    // Recipients are checked at acceptance and agents are never removed, so this is a bug.
                    None => {
                        tracing::error!(agent = %recipient, seq = %message.envelope.seq, "accepted message for an unknown agent")
                    }
                }
            }
            if matches!(message.envelope.to, Address::User(_)) {
                self.events.send(SwarmEvent::Message(message.clone()));
            }
            if let Some(id) = message.envelope.reply_to {
                let waiter = {
                    let mut waiters = self.waiters.lock();
                    if waiters.is_empty() {
                        None
                    } else {
                        waiters.remove(&id)
                    }
                };
                if let Some(tx) = waiter {
                    let _ = tx.send(message.clone());
                }
            }
        }
    }
}

impl CommitSink for Router {
    fn committed(&self, batch: &Committed) {
        self.route(&batch.messages);
        for resolution in &batch.resolutions {
            if let Outcome::Dead {
                attempts, error, ..
            } = &resolution.outcome
            {
                tracing::warn!(agent = %resolution.agent, seq = %resolution.seq, attempts, error = %error, "message moved to dead letters");
            }
        }
    }

    fn failed(&self, error: &str) {
        self.events.send(SwarmEvent::Fatal {
            error: error.to_string(),
        });
        self.fatal.send_replace(Some(error.to_string()));
    }
}

/// The captain's notice of a dead letter; written in the same commit as the verdict that makes it.
fn dead_letter_notice(
    message: &StoredMessage,
    agent: &AgentName,
    attempts: u32,
    error: &str,
) -> StoredMessage {
    let seq = message.envelope.seq;
    notice(
        "notice.dead_letter",
        format!(
            "message {} (seq {seq}) for {agent} failed {attempts} {} and went to dead letters: {error}",
            message.envelope.id,
            if attempts == 1 { "time" } else { "times" }
        ),
        json!({
            "agent": agent,
            "id": message.envelope.id,
            "seq": seq,
            "attempts": attempts,
            "error": error,
        }),
    )
}

/// Admitted sends, counted against their recipients' bounds until the message is in their mailboxes.
struct Reservation {
    entries: Vec<Arc<AgentEntry>>,
    orders: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        for entry in &self.entries {
            let counter = if self.orders {
                &entry.reserved.1
            } else {
                &entry.reserved.0
            };
            counter.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A message from the swarm to the captain. `text` is for people; `data` for scripts.
pub(crate) fn notice(kind: &str, text: String, data: serde_json::Value) -> StoredMessage {
    let mut body = json!({ "text": text });
    if let (Some(body), serde_json::Value::Object(data)) = (body.as_object_mut(), data) {
        body.extend(data);
    }
    StoredMessage {
        envelope: Envelope::new(
            Address::System,
            Address::user("captain"),
            kind,
            Body::from_value(&body),
        )
        .with_channel(Channel::Captain)
        .with_priority(Priority::Urgent),
        recipients: Vec::new(),
    }
}

impl Ums {
    /// Builds the UMS over an opened (not yet started) log.
    pub fn new(log: MessageLog, store: Store, config: MessagesConfig, events: EventBus) -> Ums {
        let directory = Arc::new(RwLock::new(BTreeMap::new()));
        let router = Arc::new(Router::new(directory, events));
        Ums {
            inner: Arc::new(UmsInner {
                log,
                store,
                router,
                config,
                accepting: AtomicBool::new(true),
                memory: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Gives skills the memory (once; later calls change nothing).
    pub fn set_memory(&self, memory: crate::memory::Memory) {
        let _ = self.inner.memory.set(memory);
    }

    /// The memory, when the swarm has one (benchmarks and tests below the swarm may not).
    pub fn memory(&self) -> Option<&crate::memory::Memory> {
        self.inner.memory.get()
    }

    /// The router, to hand to [`MessageLog::start`].
    pub fn router(&self) -> Arc<Router> {
        self.inner.router.clone()
    }

    pub fn log(&self) -> &MessageLog {
        &self.inner.log
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &MessagesConfig {
        &self.inner.config
    }

    /// Adds an agent to the directory, or updates its spec if it is already there. Returns its entry.
    pub fn register(
        &self,
        name: AgentName,
        spec: AgentSpec,
        status: AgentStatus,
    ) -> Arc<AgentEntry> {
        let mut directory = self.inner.router.directory.write();
        if let Some(entry) = directory.get(&name) {
            *entry.spec.write() = spec;
            return entry.clone();
        }
        let entry = Arc::new(AgentEntry {
            name: name.clone(),
            mailbox: Mailbox::new(),
            stats: AgentStats::new(status),
            spec: RwLock::new(spec),
            reserved: (AtomicUsize::new(0), AtomicUsize::new(0)),
        });
        directory.insert(name, entry.clone());
        entry
    }

    pub fn entry(&self, name: &str) -> Option<Arc<AgentEntry>> {
        self.inner.router.directory.read().get(name).cloned()
    }

    pub fn entries(&self) -> Vec<Arc<AgentEntry>> {
        self.inner
            .router
            .directory
            .read()
            .values()
            .cloned()
            .collect()
    }

    pub fn snapshot(&self, name: &str) -> Option<AgentSnapshot> {
        self.entry(name).map(|e| e.snapshot())
    }

    pub(crate) fn emit(&self, event: SwarmEvent) {
        self.inner.router.events.send(event);
    }

    pub fn subscribe(&self) -> EventReceiver {
        self.inner.router.events.subscribe()
    }

    /// Holds why the store failed once it has (see [`CommitSink::failed`]).
    pub fn fatal(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.inner.router.fatal.subscribe()
    }

    /// Stops accepting new messages from phones; agents' acknowledgements still go through.
    pub fn stop_accepting(&self) {
        self.inner.accepting.store(false, Ordering::Release);
    }

    /// Checks a message and resolves its recipients, without accepting it.
    pub fn prepare(&self, envelope: Envelope) -> Result<StoredMessage> {
        let max = self.inner.config.max_body_bytes;
        if envelope.body.len() > max {
            return Err(Error::BodyTooLarge {
                size: envelope.body.len(),
                max,
            });
        }
        check_kind(&envelope.kind).map_err(Error::Invalid)?;
        if envelope.channel == Channel::Captain
            && !CAPTAIN_KINDS.contains(&&*envelope.kind)
            && !envelope.kind.starts_with("notice")
        {
            return Err(Error::Invalid(format!(
                "`{}` is not a captain order; use one of {}",
                envelope.kind,
                CAPTAIN_KINDS.join(", ")
            )));
        }
        let recipients = self.recipients(&envelope.to, envelope.channel, &envelope.kind)?;
        Ok(StoredMessage {
            envelope,
            recipients,
        })
    }

    fn recipients(&self, to: &Address, channel: Channel, kind: &str) -> Result<Vec<AgentName>> {
        let directory = self.inner.router.directory.read();
        let takes = |entry: &AgentEntry| {
            let spec = entry.spec.read();
            channel == Channel::Captain || (spec.has_skill(kind) && spec.subscribes(kind))
        };
        match to {
            Address::Agent(name) => {
                let entry = directory.get(name).ok_or_else(|| Error::UnknownAgent {
                    name: name.to_string(),
                })?;
                let spec = entry.spec.read();
                if channel == Channel::Cell && !spec.has_skill(kind) {
                    return Err(Error::UnknownSkill {
                        agent: name.to_string(),
                        kind: kind.to_string(),
                        skills: spec.skills.join(", "),
                    });
                }
                Ok(vec![name.clone()])
            }
            Address::Group(_) | Address::All => {
                let (members, described): (Vec<&Arc<AgentEntry>>, String) = match to {
                    Address::Group(group) => {
                        let members: Vec<_> = directory
                            .values()
                            .filter(|e| e.spec.read().groups.iter().any(|g| **g == **group))
                            .collect();
                        if members.is_empty() {
                            return Err(Error::UnknownGroup {
                                name: group.to_string(),
                            });
                        }
                        (members, format!("group `{group}`"))
                    }
                    _ => (directory.values().collect(), "the swarm".to_string()),
                };
                let recipients: Vec<_> = members
                    .into_iter()
                    .filter(|e| e.stats.status().is_live() && takes(e))
                    .map(|e| e.name.clone())
                    .collect();
                if recipients.is_empty() {
                    return Err(Error::NoRecipients {
                        to: described,
                        kind: kind.to_string(),
                    });
                }
                Ok(recipients)
            }
            Address::User(_) => Ok(Vec::new()),
            Address::System => Err(Error::Invalid(
                "messages cannot be sent to `system`".to_string(),
            )),
        }
    }

    /// Starts waiting for the reply to message `id` (call it before the message can be answered, so that the
    /// reply cannot slip past). Refused with `overloaded` beyond [`MAX_WAITERS`].
    pub fn expect_reply(&self, id: MessageId) -> Result<ReplyWaiter> {
        let router = self.inner.router.clone();
        let (tx, rx) = oneshot::channel();
        {
            let mut waiters = router.waiters.lock();
            if waiters.len() >= MAX_WAITERS && !waiters.contains_key(&id) {
                return Err(Error::Overloaded {
                    what: format!("{MAX_WAITERS} replies are awaited already; try again later"),
                });
            }
            waiters.insert(id, tx);
        }
        Ok(ReplyWaiter { router, id, rx })
    }

    /// The reply to message `id` that agent `to` received at or after `since`, from its history: how a wait
    /// resumed after a restart finds a reply that came before it. Looks at most at `limit` replies.
    pub fn reply_in_history(
        &self,
        to: &AgentName,
        id: MessageId,
        since: Millis,
        limit: usize,
    ) -> Result<Option<StoredMessage>> {
        let page = self
            .inner
            .log
            .history(&dreamos_runtime::log::HistoryQuery {
                agent: Some(to.clone()),
                kind: Some(REPLY_KIND.to_string()),
                since: Some(since),
                limit,
                ..Default::default()
            })?;
        Ok(page
            .entries
            .into_iter()
            .map(|e| e.message)
            .find(|m| m.envelope.reply_to == Some(id)))
    }

    /// Checks, addresses, admits and durably accepts one message.
    pub async fn send(&self, envelope: Envelope) -> Result<Sent> {
        if !self.inner.accepting.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let message = self.prepare(envelope)?;
        let to = message.envelope.to.clone();
        let recipients = message.recipients.clone();
        // Held until the log has answered: by then an accepted message is in its recipients' mailboxes, where
        // the bound counts it, and a refused one is counted nowhere.
        let _reservation = self.reserve(&message)?;
        let accepted: Vec<Accepted> = self.inner.log.append(vec![message]).await?;
        let accepted = accepted
            .first()
            .ok_or_else(|| Error::Actor("the log accepted nothing".to_string()))?;
        Ok(Sent {
            id: accepted.id,
            seq: accepted.seq,
            to,
            recipients,
            accepted_at: accepted.accepted_at,
        })
    }

    /// Counts a message against its recipients' bounds, or refuses it naming the agent that is full.
    fn reserve(&self, message: &StoredMessage) -> Result<Reservation> {
        let orders = message.envelope.channel == Channel::Captain;
        let (max, key) = if orders {
            (self.inner.config.max_queued_orders, "max_queued_orders")
        } else {
            (self.inner.config.max_queued, "max_queued")
        };
        let mut reservation = Reservation {
            entries: Vec::with_capacity(message.recipients.len()),
            orders,
        };
        for name in &message.recipients {
            let Some(entry) = self.entry(name.as_str()) else {
                continue;
            };
            let counter = if orders {
                &entry.reserved.1
            } else {
                &entry.reserved.0
            };
            // Counted first, checked second: concurrent senders cannot all slip under the bound together.
            let reserved = counter.fetch_add(1, Ordering::AcqRel) + 1;
            reservation.entries.push(entry.clone());
            let (cell, queued_orders) = entry.mailbox.owed();
            let owed = if orders { queued_orders } else { cell };
            if owed + reserved > max {
                let status = entry.stats.status();
                let what = if orders { "captain orders" } else { "messages" };
                let hint = match status {
                    AgentStatus::Paused => {
                        format!(" It is paused: /agent resume {name} lets it catch up.")
                    }
                    AgentStatus::Stopped | AgentStatus::Failed => {
                        format!(
                            " It is {}: /agent restart {name} starts it.",
                            status.as_str()
                        )
                    }
                    _ => " Wait for it to catch up.".to_string(),
                };
                return Err(Error::Overloaded {
                    what: format!(
                        "{name} already has {owed} {what} waiting, the most [messages] {key} = {max} allows.{hint}"
                    ),
                });
            }
        }
        Ok(reservation)
    }

    /// Queues a captain notice that nobody waits for (used by the supervisor when no verdict goes with it).
    pub(crate) fn notify_captain(&self, message: StoredMessage) {
        if let Err(err) = self.inner.log.append_detached(vec![message]) {
            tracing::warn!(error = %err, "could not record a captain notice");
        }
    }

    /// Records that the agent begins an attempt at `delivery`, and returns once that is durable: if the attempt
    /// takes the process down (an abort, running out of memory), recovery still counts it. It costs no flush of
    /// its own: the record joins the next group, usually with the previous message's acknowledgement.
    pub(crate) async fn begin(&self, entry: &AgentEntry, delivery: &Delivery) -> Result<()> {
        self.inner
            .log
            .resolve_durable(
                Resolution {
                    seq: delivery.message.envelope.seq,
                    agent: entry.name.clone(),
                    outcome: Outcome::Started {
                        attempt: delivery.attempts + 1,
                    },
                },
                Vec::new(),
            )
            .await?;
        Ok(())
    }

    /// The agent handled the in-flight delivery: acknowledge it together with the handler's outputs.
    ///
    /// If the log refuses (it is closed, or the store failed), the delivery goes back to the mailbox: it stays
    /// unresolved in the store and is delivered again after the restart.
    pub(crate) fn handled(
        &self,
        entry: &AgentEntry,
        delivery: &Delivery,
        outputs: Vec<StoredMessage>,
    ) -> Result<()> {
        self.resolve_handled(entry, delivery, outputs, false)
    }

    /// [`Ums::handled`] for a captain order obeyed while a skill runs (the mailbox's second slot).
    pub(crate) fn order_handled(
        &self,
        entry: &AgentEntry,
        delivery: &Delivery,
        outputs: Vec<StoredMessage>,
    ) -> Result<()> {
        self.resolve_handled(entry, delivery, outputs, true)
    }

    fn resolve_handled(
        &self,
        entry: &AgentEntry,
        delivery: &Delivery,
        outputs: Vec<StoredMessage>,
        order: bool,
    ) -> Result<()> {
        let written = self.inner.log.resolve(
            Resolution {
                seq: delivery.message.envelope.seq,
                agent: entry.name.clone(),
                outcome: Outcome::Handled,
            },
            outputs,
        );
        if let Err(err) = written {
            if order {
                if let Some(delivery) = entry.mailbox.take_order_in_flight() {
                    entry.mailbox.requeue(vec![delivery]);
                }
            } else {
                self.put_back(entry);
            }
            return Err(err.into());
        }
        entry.stats.handled_one();
        // Finished only once the acknowledgement is queued for the writer: `drain` relies on an idle mailbox
        // meaning its acknowledgements are already in the writer's queue. A restart of the actor after this
        // point does not redeliver the message, and the queued write makes it durable.
        if order {
            entry.mailbox.finish_order();
        } else {
            entry.mailbox.finish();
        }
        Ok(())
    }

    /// Puts the in-flight delivery back in front of its lane: it was not resolved.
    pub(crate) fn put_back(&self, entry: &AgentEntry) {
        if let Some(delivery) = entry.mailbox.take_in_flight() {
            entry.mailbox.requeue(vec![delivery]);
        }
    }

    /// An attempt failed (a skill error, or the agent crashed while handling it): retry it or give up on it.
    /// A dead letter's notice to the captain, and `notices` (the supervisor's), are written in the same commit as
    /// the verdict, so a crash cannot keep one without the other.
    pub(crate) fn failed(
        &self,
        entry: &AgentEntry,
        mut delivery: Delivery,
        error: String,
        notices: Vec<StoredMessage>,
    ) -> Result<()> {
        entry.stats.failed_one();
        delivery.attempts += 1;
        let max = self.inner.config.max_attempts;
        let mut outputs = notices;
        let outcome = if delivery.attempts >= max {
            outputs.push(dead_letter_notice(
                &delivery.message,
                &entry.name,
                delivery.attempts,
                &error,
            ));
            Outcome::Dead {
                attempts: delivery.attempts,
                error: error.clone(),
                message: delivery.message.clone(),
            }
        } else {
            Outcome::Failed {
                attempt: delivery.attempts,
                error: error.clone(),
            }
        };
        let seq = delivery.message.envelope.seq;
        let written = self.inner.log.resolve(
            Resolution {
                seq,
                agent: entry.name.clone(),
                outcome,
            },
            outputs,
        );
        entry.mailbox.finish();
        if written.is_err() || delivery.attempts < max {
            if written.is_ok() {
                tracing::info!(agent = %entry.name, %seq, attempt = delivery.attempts, %error, "message failed; it will be retried");
            }
            entry.mailbox.requeue(vec![delivery]);
        }
        written.map_err(Error::from)
    }

    /// Moves every delivery waiting for `entry` (not the one in flight) to dead letters with `reason`, and tells
    /// the captain once. Returns how many went.
    pub(crate) fn purge(&self, entry: &AgentEntry, reason: &str) -> Result<usize> {
        let deliveries = entry.mailbox.take_queued();
        let count = deliveries.len();
        for delivery in deliveries {
            self.inner.log.resolve(
                Resolution {
                    seq: delivery.message.envelope.seq,
                    agent: entry.name.clone(),
                    outcome: Outcome::Dead {
                        attempts: delivery.attempts,
                        error: reason.to_string(),
                        message: delivery.message,
                    },
                },
                Vec::new(),
            )?;
        }
        if count > 0 {
            self.notify_captain(notice(
                "notice.purged",
                format!(
                    "{count} {} waiting for {} went to dead letters: {reason}",
                    if count == 1 { "message" } else { "messages" },
                    entry.name
                ),
                json!({ "agent": entry.name, "count": count, "reason": reason }),
            ));
        }
        Ok(count)
    }

    /// Puts what the log found unresolved back into mailboxes. A delivery for an agent that no longer exists,
    /// or one already tried `max_attempts` times (the process died while handling it), is dead-lettered with the
    /// captain's notice, so that it neither vanishes silently, nor pins the log, nor takes the swarm down again.
    pub fn recover(&self, recovery: Recovery) -> Result<()> {
        let max = self.inner.config.max_attempts;
        for redelivery in recovery.redeliveries {
            let entry = self.entry(redelivery.agent.as_str());
            let error = match &entry {
                None => format!(
                    "agent `{}` no longer exists in the configuration",
                    redelivery.agent
                ),
                Some(_) if redelivery.attempts >= max => format!(
                    "dreamos stopped {} {} while {} was handling it (the process aborted, ran out of memory or was killed)",
                    redelivery.attempts,
                    if redelivery.attempts == 1 { "time" } else { "times" },
                    redelivery.agent
                ),
                Some(entry) => {
                    entry.mailbox.push(Delivery {
                        message: redelivery.message,
                        attempts: redelivery.attempts,
                    });
                    continue;
                }
            };
            tracing::warn!(agent = %redelivery.agent, seq = %redelivery.message.envelope.seq, %error, "dead-lettering a message found at start");
            let notice = dead_letter_notice(
                &redelivery.message,
                &redelivery.agent,
                redelivery.attempts,
                &error,
            );
            self.inner.log.resolve(
                Resolution {
                    seq: redelivery.message.envelope.seq,
                    agent: redelivery.agent.clone(),
                    outcome: Outcome::Dead {
                        attempts: redelivery.attempts,
                        error,
                        message: redelivery.message,
                    },
                },
                vec![notice],
            )?;
        }
        Ok(())
    }

    /// Wakes [`Ums::drain`] waiters; agents call it when they run out of work.
    pub(crate) fn agent_idle(&self) {
        self.inner.router.idle.notify_waiters();
    }

    /// Waits until every running (or restarting) agent has handled everything it can take and the log has
    /// written the results, or until `timeout`. Paused, stopped and failed agents are not waited for. Returns
    /// whether it drained.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let work = async {
            loop {
                let idle = self.inner.router.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if self.all_idle() {
                    // Acknowledgements (and the replies they carry) may still be queued for the writer; once they
                    // are written, replies may have produced new work, so look again.
                    if self.inner.log.barrier().await.is_err() {
                        return;
                    }
                    if self.all_idle() {
                        return;
                    }
                    continue;
                }
                idle.await;
            }
        };
        tokio::time::timeout(timeout, work).await.is_ok()
    }

    fn all_idle(&self) -> bool {
        self.entries().iter().all(|e| {
            // A restarting agent will be back after its backoff, so its queue counts; paused, stopped and failed
            // agents will not move without the captain, so theirs does not.
            !matches!(
                e.stats.status(),
                AgentStatus::Idle | AgentStatus::Busy | AgentStatus::Restarting
            ) || e.mailbox.is_idle()
        })
    }
}

#[cfg(test)]
mod tests {
    use dreamos_runtime::{config::Config, log::LogOptions};
    use parking_lot::Mutex;

    use super::*;

    /// One commit's messages and resolutions.
    type Commit = (Vec<Arc<StoredMessage>>, Vec<Resolution>);

    /// Remembers each commit, in commit order, and routes it as the UMS would.
    struct Commits(Mutex<Vec<Commit>>, Arc<Router>);

    impl CommitSink for Commits {
        fn committed(&self, batch: &Committed) {
            self.0
                .lock()
                .push((batch.messages.clone(), batch.resolutions.clone()));
            self.1.committed(batch);
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        ums: Ums,
        commits: Arc<Commits>,
        entry: Arc<AgentEntry>,
    }

    fn fixture(config: &Config) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let (log, _) = MessageLog::open(
            &store,
            LogOptions::new(&config.store, &config.messages, &config.retention),
        )
        .expect("log");
        let ums = Ums::new(
            log.clone(),
            store,
            config.messages.clone(),
            EventBus::new(1 << 20),
        );
        let commits = Arc::new(Commits(Mutex::new(Vec::new()), ums.router()));
        log.start(commits.clone()).expect("start");
        let entry = ums.register(
            AgentName::new("agent-1").expect("name"),
            AgentSpec {
                skills: vec!["ping".into()],
                groups: vec![],
                subscribe: vec!["*".into()],
            },
            AgentStatus::Paused,
        );
        Fixture {
            _dir: dir,
            ums,
            commits,
            entry,
        }
    }

    fn ping() -> Envelope {
        Envelope::new(
            Address::user("console"),
            "agent-1".parse().expect("address"),
            "ping",
            Body::text("x"),
        )
    }

    /// The delivery of a message as accepted (with its sequence number), popped as an agent would.
    async fn in_flight(f: &Fixture, attempts: u32) -> Delivery {
        let sent = f.ums.send(ping()).await.expect("accepted");
        f.ums.log().barrier().await.expect("barrier");
        let message = f
            .commits
            .0
            .lock()
            .iter()
            .flat_map(|(m, _)| m.iter())
            .find(|m| m.envelope.id == sent.id)
            .cloned()
            .expect("committed");
        Delivery { message, attempts }
    }

    #[tokio::test]
    async fn a_dead_letter_and_its_notice_are_one_commit() {
        let config = Config::defaults();
        let f = fixture(&config);
        let delivery = in_flight(&f, config.messages.max_attempts - 1).await;
        f.ums
            .failed(&f.entry, delivery, "boom".into(), Vec::new())
            .expect("failed");
        f.ums.log().barrier().await.expect("barrier");
        let commits = f.commits.0.lock();
        let (messages, resolutions) = commits
            .iter()
            .find(|(_, r)| r.iter().any(|r| matches!(r.outcome, Outcome::Dead { .. })))
            .expect("the dead verdict was committed");
        assert!(
            messages
                .iter()
                .any(|m| &*m.envelope.kind == "notice.dead_letter"),
            "the notice is in the verdict's commit: {messages:?}"
        );
        assert_eq!(resolutions.len(), 1);
    }

    #[tokio::test]
    async fn a_supervisors_notice_rides_with_the_verdict_it_belongs_to() {
        let config = Config::defaults();
        let f = fixture(&config);
        let delivery = in_flight(&f, 0).await;
        let agent_failed = notice("notice.agent_failed", "down".into(), json!({}));
        f.ums
            .failed(&f.entry, delivery, "crashed".into(), vec![agent_failed])
            .expect("failed");
        f.ums.log().barrier().await.expect("barrier");
        let commits = f.commits.0.lock();
        let (messages, _) = commits
            .iter()
            .find(|(_, r)| {
                r.iter()
                    .any(|r| matches!(r.outcome, Outcome::Failed { attempt: 1, .. }))
            })
            .expect("the verdict was committed");
        assert!(messages
            .iter()
            .any(|m| &*m.envelope.kind == "notice.agent_failed"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_senders_never_push_an_agent_past_its_bound() {
        let mut config = Config::defaults();
        config.messages.max_queued = 50;
        config.messages.max_queued_orders = 5;
        let f = fixture(&config);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let ums = f.ums.clone();
            tasks.push(tokio::spawn(async move {
                let mut accepted = 0;
                let mut refused = 0;
                for _ in 0..20 {
                    match ums.send(ping()).await {
                        Ok(_) => accepted += 1,
                        Err(Error::Overloaded { .. }) => refused += 1,
                        Err(other) => panic!("{other}"),
                    }
                }
                (accepted, refused)
            }));
        }
        let mut accepted = 0;
        for task in tasks {
            let (a, r) = task.await.expect("sender");
            accepted += a;
            assert_eq!(a + r, 20);
        }
        // Concurrent senders may refuse a little early (a message is counted twice between its routing and its
        // sender's answer), never late.
        assert!((45..=50).contains(&accepted), "{accepted} accepted");
        assert_eq!(f.entry.mailbox.owed().0, accepted);
        // Captain orders have a bound of their own, so they still reach the full agent.
        let mut order = ping().with_channel(Channel::Captain);
        order.kind = Arc::from("resume");
        f.ums
            .send(order)
            .await
            .expect("an order reaches a full agent");
        assert_eq!(f.entry.mailbox.owed(), (accepted, 1));
    }
}
