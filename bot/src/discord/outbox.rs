//! The outbox: replies and notices owed to Discord, posted from the message log by a durable cursor.
//!
//! It follows the log the way an agent consumes it. Every message accepted after the cursor is looked at in
//! order; one addressed to a Discord person (`user:discord.USER.CHANNEL`, the principal a Discord command sends
//! as) is posted to that channel, and a notice for the captain (`user:captain`: dead letters, agents marked
//! failed) to `[discord] events_channel_id`. The cursor moves on only after Discord answered, and each post carries
//! a nonce derived from the message id with `enforce_nonce`, so a post repeated after `kill -9` between Discord's
//! answer and the cursor's write is one message, not two. A reply that a `/send wait:true` interaction shows
//! itself is not posted again.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use dreamos_agents::{
    message::{Address, MessageId, Seq},
    Swarm,
};
use dreamos_runtime::{frontend::FrontendState, log::StoredMessage};
use parking_lot::Mutex;
use serde_json::json;

use super::{
    reply,
    rest::{Rest, RestError},
};

/// Where the cursor is kept in [`FrontendState`].
pub const CURSOR: &str = "discord.outbox";

/// Messages read from the log per round.
const BATCH: usize = 64;

/// How a Discord person is addressed: `user:discord.USER.CHANNEL`.
pub fn principal_name(user: u64, channel: u64) -> String {
    format!("discord.{user}.{channel}")
}

/// The user and channel of a Discord principal's name.
pub fn parse_principal(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("discord.")?;
    let (user, channel) = rest.split_once('.')?;
    Some((user.parse().ok()?, channel.parse().ok()?))
}

/// The nonce of a message's post: 25 characters, Discord's most. A ULID's first character only changes every
/// few thousand years; the other 25 are unique.
pub fn nonce(id: MessageId) -> String {
    id.to_string()[1..].to_string()
}

/// Replies that an interaction is waiting for (`/send wait:true`), so that the outbox does not post them too.
#[derive(Default)]
pub struct Inline {
    waits: Mutex<HashMap<MessageId, bool>>,
}

impl Inline {
    /// An interaction waits for the reply to `id`.
    pub fn waiting(&self, id: MessageId) {
        self.waits.lock().insert(id, false);
    }

    /// The interaction showed the reply to `id` (`shown`), or gave up waiting (the outbox posts it when it comes).
    pub fn done(&self, id: MessageId, shown: bool) {
        let mut waits = self.waits.lock();
        if shown {
            waits.insert(id, true);
        } else {
            waits.remove(&id);
        }
    }

    fn state(&self, id: MessageId) -> Option<bool> {
        self.waits.lock().get(&id).copied()
    }

    fn forget(&self, id: MessageId) {
        self.waits.lock().remove(&id);
    }
}

pub struct Outbox {
    pub swarm: Swarm,
    pub rest: Arc<Rest>,
    pub state: FrontendState,
    pub events_channel: Option<u64>,
    pub inline: Arc<Inline>,
}

/// Where one message goes.
enum Target {
    /// Not for Discord.
    Nowhere,
    Channel {
        channel: u64,
        mention: Option<u64>,
    },
}

impl Outbox {
    /// Posts until `stop` resolves. Starts where the cursor was left, or, the first time, at the end of the log
    /// (history from before the Discord frontend existed is not posted).
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut events = self.swarm.subscribe();
        let mut cursor = match self.state.number(CURSOR) {
            Ok(Some(seq)) => seq,
            Ok(None) => {
                let last = self.swarm.status().messages.last_seq;
                self.save(last);
                last
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot read the Discord outbox's cursor; posting nothing");
                return;
            }
        };
        loop {
            let batch = match self.swarm.messages_after(Seq(cursor), BATCH) {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::error!(error = %err, "cannot read the message log for the Discord outbox");
                    Vec::new()
                }
            };
            if batch.is_empty() {
                // Woken by any event (a message to a person is one), or once a second to be sure.
                tokio::select! {
                    _ = &mut stop => return,
                    _ = events.recv() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            for message in batch {
                let seq = message.envelope.seq.0;
                tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    _ = self.deliver(&message) => {}
                }
                cursor = seq;
                self.save(cursor);
            }
        }
    }

    fn save(&self, cursor: u64) {
        if let Err(err) = self.state.set_number(CURSOR, cursor) {
            tracing::error!(error = %err, "cannot save the Discord outbox's cursor");
        }
        self.swarm.request_flush();
    }

    fn target(&self, message: &StoredMessage) -> Target {
        match &message.envelope.to {
            Address::User(name) if &**name == "captain" => match self.events_channel {
                Some(channel) => Target::Channel {
                    channel,
                    mention: None,
                },
                None => Target::Nowhere,
            },
            Address::User(name) => match parse_principal(name) {
                Some((user, channel)) => Target::Channel {
                    channel,
                    mention: Some(user),
                },
                None => Target::Nowhere,
            },
            _ => Target::Nowhere,
        }
    }

    /// Posts one message, retrying until Discord takes it or refuses it for good. Returns when the cursor may
    /// move past it.
    async fn deliver(&self, message: &StoredMessage) {
        let Target::Channel { channel, mention } = self.target(message) else {
            return;
        };
        if let Some(reply_to) = message.envelope.reply_to {
            if self.shown_inline(reply_to).await {
                return;
            }
        }
        let post = reply::swarm_message(message, mention);
        let mut body = post.body();
        body["nonce"] = json!(nonce(message.envelope.id));
        body["enforce_nonce"] = json!(true);
        let files = post.attachments();
        let mut wait = Duration::from_secs(1);
        loop {
            match self.rest.post_message(channel, &body, &files).await {
                Ok(_) => return,
                Err(RestError::Rejected {
                    status,
                    message: why,
                }) => {
                    tracing::warn!(channel, status, error = %why, seq = %message.envelope.seq, "Discord refused a post; skipping it");
                    return;
                }
                Err(err @ RestError::GaveUp { .. }) => {
                    // Discord is unreachable or failing: the post stays owed; try again, slower.
                    tracing::warn!(channel, error = %err, seq = %message.envelope.seq, "cannot post to Discord; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    /// Whether an interaction shows the reply to `id` itself. While it still waits, so does the outbox (briefly:
    /// the interaction learns of the reply at the same moment).
    async fn shown_inline(&self, id: MessageId) -> bool {
        let deadline =
            Instant::now() + self.swarm.config().messages.wait_timeout + Duration::from_secs(2);
        loop {
            match self.inline.state(id) {
                Some(true) => {
                    self.inline.forget(id);
                    return true;
                }
                None => return false,
                Some(false) if Instant::now() >= deadline => {
                    self.inline.forget(id);
                    return false;
                }
                Some(false) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_and_nonces() {
        let name = principal_name(123456789012345678, 987654321098765432);
        assert!(
            dreamos_agents::message::check_name(&name, "user").is_ok(),
            "{name}"
        );
        assert_eq!(
            parse_principal(&name),
            Some((123456789012345678, 987654321098765432))
        );
        assert_eq!(parse_principal("console"), None);
        let id = MessageId::new();
        assert_eq!(nonce(id).len(), 25);
        assert_ne!(nonce(id), nonce(MessageId::new()));
    }
}
