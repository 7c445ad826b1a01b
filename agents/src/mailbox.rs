//! An agent's mailbox: priority lanes of accepted messages, the one being handled, and the pump trigger.
//!
//! The mailbox outlives the agent actor: when an agent crashes or is stopped its mailbox keeps what was queued,
//! and the message it was handling (`in_flight`) is put back at the front of its lane for the next incarnation.
//! Lanes are taken in order: captain orders, then urgent, high, normal, low. Within a lane, order is acceptance
//! order, which keeps each sender's messages in the order it sent them.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use dreamos_runtime::{
    log::StoredMessage,
    message::{Channel, Priority},
};
use parking_lot::Mutex;

/// One message on its way to one agent.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Arc<StoredMessage>,
    /// Failed attempts so far.
    pub attempts: u32,
}

impl Delivery {
    pub fn new(message: Arc<StoredMessage>) -> Delivery {
        Delivery {
            message,
            attempts: 0,
        }
    }

    fn lane(&self) -> usize {
        let env = &self.message.envelope;
        match (env.channel, env.priority) {
            (Channel::Captain, _) => CAPTAIN_LANE,
            (Channel::Cell, Priority::Urgent) => 1,
            (Channel::Cell, Priority::High) => 2,
            (Channel::Cell, Priority::Normal) => 3,
            (Channel::Cell, Priority::Low) => 4,
        }
    }
}

const CAPTAIN_LANE: usize = 0;
const LANES: usize = 5;

/// Asks the owning actor to drain the mailbox; returns false when the actor is gone.
pub type Waker = Box<dyn Fn() -> bool + Send + Sync>;

#[derive(Default)]
struct Lanes {
    lanes: [VecDeque<Delivery>; LANES],
    in_flight: Option<Delivery>,
    /// A captain order taken while `in_flight` (a skill) still runs: orders never wait for a skill.
    order_in_flight: Option<Delivery>,
    /// Paused: only captain orders are taken (so that `resume` can arrive).
    paused: bool,
    /// Halted: nothing is taken; the agent is stopping.
    halted: bool,
}

impl Lanes {
    fn queued(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    fn ready(&self) -> bool {
        !self.halted
            && if self.paused {
                !self.lanes[CAPTAIN_LANE].is_empty()
            } else {
                self.lanes.iter().any(|l| !l.is_empty())
            }
    }
}

pub struct Mailbox {
    lanes: Mutex<Lanes>,
    waker: Mutex<Option<Waker>>,
    /// Told when a captain order arrives, so that an agent busy in a skill hears it at once.
    orders: tokio::sync::Notify,
    /// A pump request is on its way to the actor; set by [`Mailbox::wake`], cleared by the actor.
    scheduled: AtomicBool,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("queued", &self.depth())
            .finish()
    }
}

impl Default for Mailbox {
    fn default() -> Self {
        Mailbox::new()
    }
}

impl Mailbox {
    pub fn new() -> Mailbox {
        Mailbox {
            lanes: Mutex::new(Lanes::default()),
            waker: Mutex::new(None),
            orders: tokio::sync::Notify::new(),
            scheduled: AtomicBool::new(false),
        }
    }

    /// Queues a delivery at the back of its lane and wakes the agent.
    pub fn push(&self, delivery: Delivery) {
        let order = delivery.lane() == CAPTAIN_LANE;
        self.lanes.lock().lanes[delivery.lane()].push_back(delivery);
        if order {
            self.orders.notify_one();
        }
        self.wake();
    }

    /// Resolves when a captain order may be waiting (at once if one arrived since the last call).
    pub async fn order_arrived(&self) {
        self.orders.notified().await;
    }

    /// Takes the next captain order while a skill is in flight, and remembers it as the order in flight.
    pub fn pop_order(&self) -> Option<Delivery> {
        let mut lanes = self.lanes.lock();
        if lanes.halted || lanes.order_in_flight.is_some() {
            return None;
        }
        let delivery = lanes.lanes[CAPTAIN_LANE].pop_front()?;
        lanes.order_in_flight = Some(delivery.clone());
        Some(delivery)
    }

    /// The order taken by [`Mailbox::pop_order`] is done.
    pub fn finish_order(&self) {
        self.lanes.lock().order_in_flight = None;
    }

    /// Removes and returns the order taken by [`Mailbox::pop_order`]: the agent died while obeying it.
    pub fn take_order_in_flight(&self) -> Option<Delivery> {
        self.lanes.lock().order_in_flight.take()
    }

    /// Queues deliveries again at the front of their lanes, keeping their relative order.
    pub fn requeue(&self, deliveries: Vec<Delivery>) {
        {
            let mut lanes = self.lanes.lock();
            for delivery in deliveries.into_iter().rev() {
                lanes.lanes[delivery.lane()].push_front(delivery);
            }
        }
        self.wake();
    }

    /// Takes the next delivery to handle, highest lane first, and remembers it as in flight.
    pub fn pop(&self) -> Option<Delivery> {
        let mut lanes = self.lanes.lock();
        if lanes.halted || lanes.in_flight.is_some() {
            return None;
        }
        let take = if lanes.paused { 1 } else { LANES };
        let delivery = lanes.lanes[..take]
            .iter_mut()
            .find_map(VecDeque::pop_front)?;
        lanes.in_flight = Some(delivery.clone());
        Some(delivery)
    }

    /// Removes and returns every queued delivery (not the one in flight), lane by lane: a purge.
    pub fn take_queued(&self) -> Vec<Delivery> {
        let mut lanes = self.lanes.lock();
        lanes
            .lanes
            .iter_mut()
            .flat_map(|lane| lane.drain(..))
            .collect()
    }

    /// The in-flight delivery is done (handled, or failed and dealt with).
    pub fn finish(&self) {
        self.lanes.lock().in_flight = None;
    }

    /// Removes and returns the in-flight delivery: the agent died while handling it.
    pub fn take_in_flight(&self) -> Option<Delivery> {
        self.lanes.lock().in_flight.take()
    }

    /// Messages waiting, not counting the one in flight.
    pub fn depth(&self) -> usize {
        self.lanes.lock().queued()
    }

    /// Deliveries this agent owes a verdict on, queued or in flight: (cell messages, captain orders). What the
    /// per-agent bounds of `[messages]` count.
    pub fn owed(&self) -> (usize, usize) {
        let lanes = self.lanes.lock();
        let orders = lanes.lanes[CAPTAIN_LANE].len();
        let mut cell = lanes.queued() - orders;
        let mut orders = orders;
        match lanes.in_flight.as_ref().map(Delivery::lane) {
            Some(CAPTAIN_LANE) => orders += 1,
            Some(_) => cell += 1,
            None => {}
        }
        if lanes.order_in_flight.is_some() {
            orders += 1;
        }
        (cell, orders)
    }

    /// Nothing queued and nothing in flight that this agent could take now.
    pub fn is_idle(&self) -> bool {
        let lanes = self.lanes.lock();
        lanes.in_flight.is_none() && lanes.order_in_flight.is_none() && !lanes.ready()
    }

    pub fn set_paused(&self, paused: bool) {
        self.lanes.lock().paused = paused;
        if !paused {
            self.wake();
        }
    }

    pub fn is_paused(&self) -> bool {
        self.lanes.lock().paused
    }

    /// Stops handing out deliveries (the agent is stopping), or allows it again.
    pub fn set_halted(&self, halted: bool) {
        self.lanes.lock().halted = halted;
    }

    /// Connects the mailbox to a (new) actor and wakes it if work is waiting.
    pub fn attach(&self, waker: Waker) {
        *self.waker.lock() = Some(waker);
        self.scheduled.store(false, Ordering::Release);
        self.wake();
    }

    /// Disconnects the actor: pushes now only queue.
    pub fn detach(&self) {
        *self.waker.lock() = None;
        self.scheduled.store(false, Ordering::Release);
    }

    /// Called by the actor as it starts draining: later pushes must schedule another pump.
    pub fn pump_started(&self) {
        self.scheduled.store(false, Ordering::Release);
    }

    /// Asks the actor to pump if work is ready and no request is already on its way.
    pub fn wake(&self) {
        if !self.lanes.lock().ready() {
            return;
        }
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let delivered = match &*self.waker.lock() {
            Some(waker) => waker(),
            None => false,
        };
        if !delivered {
            // Nobody to wake: let the next attach (or push, once attached) schedule the pump.
            self.scheduled.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use dreamos_runtime::message::{Address, AgentName, Body, Envelope, Seq};

    use super::*;

    fn delivery(seq: u64, channel: Channel, priority: Priority) -> Delivery {
        let agent = AgentName::new("agent-1").expect("name");
        let mut envelope = Envelope::new(
            Address::user("console"),
            Address::agent(&agent),
            "ping",
            Body::text("x"),
        )
        .with_priority(priority)
        .with_channel(channel);
        envelope.seq = Seq(seq);
        Delivery::new(Arc::new(StoredMessage {
            envelope,
            recipients: vec![agent],
        }))
    }

    fn drain(mailbox: &Mailbox) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(d) = mailbox.pop() {
            out.push(d.message.envelope.seq.0);
            mailbox.finish();
        }
        out
    }

    #[test]
    fn captain_first_then_by_priority_then_by_acceptance() {
        let mailbox = Mailbox::new();
        mailbox.push(delivery(1, Channel::Cell, Priority::Low));
        mailbox.push(delivery(2, Channel::Cell, Priority::Normal));
        mailbox.push(delivery(3, Channel::Cell, Priority::Urgent));
        mailbox.push(delivery(4, Channel::Captain, Priority::Normal));
        mailbox.push(delivery(5, Channel::Cell, Priority::Normal));
        mailbox.push(delivery(6, Channel::Cell, Priority::High));
        assert_eq!(drain(&mailbox), [4, 3, 6, 2, 5, 1]);
    }

    #[test]
    fn one_in_flight_at_a_time_and_crash_requeues_it_in_front() {
        let mailbox = Mailbox::new();
        for seq in 1..=3 {
            mailbox.push(delivery(seq, Channel::Cell, Priority::Normal));
        }
        let first = mailbox.pop().expect("first");
        assert!(mailbox.pop().is_none(), "only one delivery in flight");
        let mut crashed = mailbox.take_in_flight().expect("in flight");
        assert_eq!(crashed.message.envelope.seq, first.message.envelope.seq);
        crashed.attempts += 1;
        mailbox.requeue(vec![crashed]);
        let again = mailbox.pop().expect("again");
        assert_eq!((again.message.envelope.seq.0, again.attempts), (1, 1));
        mailbox.finish();
        assert_eq!(drain(&mailbox), [2, 3]);
    }

    #[test]
    fn paused_takes_only_captain_orders_and_halted_takes_nothing() {
        let mailbox = Mailbox::new();
        mailbox.push(delivery(1, Channel::Cell, Priority::Urgent));
        mailbox.push(delivery(2, Channel::Captain, Priority::Urgent));
        mailbox.set_paused(true);
        assert_eq!(drain(&mailbox), [2]);
        assert!(
            mailbox.is_idle(),
            "a paused agent with only cell mail is idle"
        );
        mailbox.set_halted(true);
        mailbox.set_paused(false);
        assert!(mailbox.pop().is_none());
        mailbox.set_halted(false);
        assert_eq!(drain(&mailbox), [1]);
    }

    #[test]
    fn wake_schedules_one_pump_until_the_actor_starts_draining() {
        let mailbox = Mailbox::new();
        let pumps = Arc::new(AtomicUsize::new(0));
        mailbox.push(delivery(1, Channel::Cell, Priority::Normal));
        let counter = pumps.clone();
        mailbox.attach(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            true
        }));
        assert_eq!(
            pumps.load(Ordering::SeqCst),
            1,
            "attach wakes for queued work"
        );
        mailbox.push(delivery(2, Channel::Cell, Priority::Normal));
        assert_eq!(
            pumps.load(Ordering::SeqCst),
            1,
            "a pump is already scheduled"
        );
        mailbox.pump_started();
        mailbox.push(delivery(3, Channel::Cell, Priority::Normal));
        assert_eq!(pumps.load(Ordering::SeqCst), 2);
        mailbox.detach();
        mailbox.push(delivery(4, Channel::Cell, Priority::Normal));
        assert_eq!(
            pumps.load(Ordering::SeqCst),
            2,
            "detached: pushes only queue"
        );
    }
}
