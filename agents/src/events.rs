//! What happens on its own, for frontends to show: messages to people, restarts, failures, progress; and the
//! [`EventBus`] that fans them out.
//!
//! Actors never call a frontend; they emit [`SwarmEvent`]s on the bus, which frontends subscribe to with
//! [`crate::Swarm::subscribe`]. The bus never blocks the swarm and never grows without bound: each subscriber
//! has its own queue, bounded in bytes (`messages.event_buffer_bytes`); when a slow subscriber's queue is full the
//! oldest events are dropped and it is told how many ([`RecvError::Lagged`]) before its next event.

use std::{
    collections::VecDeque,
    sync::{Arc, Weak},
};

use dreamos_runtime::{
    log::StoredMessage,
    message::{AgentName, MessageId},
};
use parking_lot::Mutex;
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub enum SwarmEvent {
    /// A message to a person became durable: an agent's reply, or a notice from the swarm to the captain
    /// (a dead letter, an agent given up on). Notices are messages, so they are in history too.
    Message(Arc<StoredMessage>),
    /// A skill reported progress on the message it is handling.
    Progress {
        agent: AgentName,
        message: MessageId,
        percent: Option<u8>,
        note: String,
    },
    /// A task changed: its state (durable when this is seen) or its progress (kept in memory until the task's
    /// next durable change).
    Task(Arc<dreamos_runtime::task::Task>),
    /// The supervisor restarted a crashed agent.
    AgentRestarted {
        agent: AgentName,
        restarts: u32,
        reason: String,
    },
    /// The store failed underneath the swarm: nothing more is accepted and the process should stop. Nothing
    /// acknowledged is lost; what was not written is delivered again after the restart.
    Fatal { error: String },
}

impl SwarmEvent {
    /// The event's name in `{"event": ...}` lines.
    pub fn name(&self) -> &'static str {
        match self {
            SwarmEvent::Message(message) => {
                if message.envelope.reply_to.is_some() {
                    "reply"
                } else {
                    "notice"
                }
            }
            SwarmEvent::Progress { .. } => "progress",
            SwarmEvent::Task(_) => "task",
            SwarmEvent::AgentRestarted { .. } => "agent_restarted",
            SwarmEvent::Fatal { .. } => "fatal",
        }
    }

    /// What the event costs a subscriber's queue, in bytes (an upper estimate).
    pub fn size(&self) -> usize {
        64 + match self {
            SwarmEvent::Message(message) => message.size_hint(),
            SwarmEvent::Progress { note, .. } => note.len(),
            SwarmEvent::Task(task) => {
                256 + task.title.len()
                    + task.progress.as_ref().map_or(0, |p| p.line.len())
                    + task.error.as_ref().map_or(0, String::len)
            }
            SwarmEvent::AgentRestarted { reason, .. } => reason.len(),
            SwarmEvent::Fatal { error } => error.len(),
        }
    }
}

/// Fans events out to every subscriber without waiting for any. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    subscribers: Mutex<Vec<Weak<Subscriber>>>,
    max_bytes: usize,
}

struct Subscriber {
    queue: Mutex<Queue>,
    notify: Notify,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<(SwarmEvent, usize)>,
    bytes: usize,
    /// Dropped since the subscriber last heard of it.
    dropped: u64,
    closed: bool,
}

/// Why [`EventReceiver::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// This many events were dropped because the subscriber fell behind; the next call returns the next event.
    Lagged(u64),
    /// The swarm is gone; no more events will come.
    Closed,
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecvError::Lagged(n) => write!(
                f,
                "{n} events were dropped because the subscriber fell behind"
            ),
            RecvError::Closed => f.write_str("the swarm is gone"),
        }
    }
}

impl std::error::Error for RecvError {}

/// Why [`EventReceiver::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    Empty,
    Lagged(u64),
    Closed,
}

impl EventBus {
    /// A bus whose subscribers may each fall behind by `max_bytes` of events.
    pub fn new(max_bytes: usize) -> EventBus {
        EventBus {
            inner: Arc::new(BusInner {
                subscribers: Mutex::new(Vec::new()),
                max_bytes,
            }),
        }
    }

    /// Hands `event` to every subscriber; never waits.
    pub fn send(&self, event: SwarmEvent) {
        let size = event.size();
        let mut subscribers = self.inner.subscribers.lock();
        subscribers.retain(|s| s.strong_count() > 0);
        for subscriber in subscribers.iter().filter_map(Weak::upgrade) {
            {
                let mut queue = subscriber.queue.lock();
                queue.events.push_back((event.clone(), size));
                queue.bytes += size;
                while queue.bytes > self.inner.max_bytes && queue.events.len() > 1 {
                    if let Some((_, dropped)) = queue.events.pop_front() {
                        queue.bytes -= dropped;
                        queue.dropped += 1;
                    }
                }
            }
            subscriber.notify.notify_one();
        }
    }

    /// Receives every event sent from now on.
    pub fn subscribe(&self) -> EventReceiver {
        let subscriber = Arc::new(Subscriber {
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
        });
        self.inner
            .subscribers
            .lock()
            .push(Arc::downgrade(&subscriber));
        EventReceiver { subscriber }
    }

    /// Subscribers currently listening.
    pub fn receiver_count(&self) -> usize {
        self.inner
            .subscribers
            .lock()
            .iter()
            .filter(|s| s.strong_count() > 0)
            .count()
    }
}

impl Drop for BusInner {
    fn drop(&mut self) {
        for subscriber in self.subscribers.get_mut().iter().filter_map(Weak::upgrade) {
            subscriber.queue.lock().closed = true;
            subscriber.notify.notify_one();
        }
    }
}

/// One subscriber's end of the bus.
pub struct EventReceiver {
    subscriber: Arc<Subscriber>,
}

impl EventReceiver {
    /// The next event; first, if events were dropped since the last call, how many.
    pub async fn recv(&mut self) -> Result<SwarmEvent, RecvError> {
        loop {
            match self.try_recv() {
                Ok(event) => return Ok(event),
                Err(TryRecvError::Lagged(n)) => return Err(RecvError::Lagged(n)),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                // `notify_one` keeps a permit when nobody waits, so an event sent between the check and the
                // wait is not missed.
                Err(TryRecvError::Empty) => self.subscriber.notify.notified().await,
            }
        }
    }

    pub fn try_recv(&mut self) -> Result<SwarmEvent, TryRecvError> {
        let mut queue = self.subscriber.queue.lock();
        if queue.dropped > 0 {
            return Err(TryRecvError::Lagged(std::mem::take(&mut queue.dropped)));
        }
        match queue.events.pop_front() {
            Some((event, size)) => {
                queue.bytes -= size;
                Ok(event)
            }
            None if queue.closed => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(note: &str) -> SwarmEvent {
        SwarmEvent::Progress {
            agent: AgentName::new("agent-1").expect("name"),
            message: MessageId::new(),
            percent: None,
            note: note.to_string(),
        }
    }

    fn note(event: SwarmEvent) -> String {
        match event {
            SwarmEvent::Progress { note, .. } => note,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_the_oldest_events_and_is_told_how_many() {
        // Room for about ten 100-byte events.
        let bus = EventBus::new(10 * (64 + 100));
        let mut slow = bus.subscribe();
        let mut fast = bus.subscribe();
        let text = "x".repeat(100);
        for i in 0..1000 {
            bus.send(progress(&format!("{i:03}{text}")));
            // The fast one keeps up.
            assert!(note(fast.try_recv().expect("event")).starts_with(&format!("{i:03}")));
        }
        match slow.recv().await {
            Err(RecvError::Lagged(n)) => assert!((985..=995).contains(&n), "dropped {n}"),
            other => panic!("{other:?}"),
        }
        let mut kept = Vec::new();
        while let Ok(event) = slow.try_recv() {
            kept.push(note(event)[..3].to_string());
        }
        assert_eq!(
            kept.last().map(String::as_str),
            Some("999"),
            "the newest are kept"
        );
        assert!(kept.len() <= 10, "{kept:?}");
        assert!(matches!(slow.try_recv(), Err(TryRecvError::Empty)));
    }

    #[tokio::test]
    async fn a_dropped_bus_closes_its_receivers_and_dropped_receivers_are_forgotten() {
        let bus = EventBus::new(1 << 20);
        let mut rx = bus.subscribe();
        drop(bus.subscribe());
        bus.send(progress("last"));
        assert_eq!(bus.receiver_count(), 1);
        drop(bus);
        assert_eq!(note(rx.recv().await.expect("queued event")), "last");
        assert_eq!(rx.recv().await.err(), Some(RecvError::Closed));
    }
}
