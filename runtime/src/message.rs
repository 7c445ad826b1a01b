//! The envelope and its parts: ids, addresses, channels, priorities, bodies, timestamps.
//!
//! These types live in `runtime` because the message log persists them; `dreamos-agents` re-exports them and
//! owns what happens to them (routing, delivery, handling).

use std::{fmt, str::FromStr, sync::Arc, time::SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::Ulid;

/// A message's unique id, a ULID: sortable by creation time, unique across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub Ulid);

impl MessageId {
    pub fn new() -> MessageId {
        MessageId(Ulid::new())
    }
}

impl Default for MessageId {
    fn default() -> Self {
        MessageId::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MessageId {
    type Err = String;
    fn from_str(s: &str) -> Result<MessageId, String> {
        Ulid::from_string(s)
            .map(MessageId)
            .map_err(|_| format!("`{s}` is not a message id (ids are 26-character ULIDs)"))
    }
}

// Binary formats (the log) store the id as 16 bytes; text formats (JSON answers) as its 26-character string.
impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&self.0)
        } else {
            s.serialize_u128(self.0 .0)
        }
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MessageId, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(MessageId(Ulid(u128::deserialize(d)?)))
        }
    }
}

/// The position the log gave a message when it accepted it. Increases by one per accepted message.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Milliseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    pub fn now() -> Millis {
        let since = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Millis(since.as_millis() as u64)
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T03:11:26.123Z`.
    pub fn rfc3339(self) -> String {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(self.0);
        humantime::format_rfc3339_millis(time).to_string()
    }

    pub fn saturating_sub(self, d: std::time::Duration) -> Millis {
        Millis(self.0.saturating_sub(d.as_millis() as u64))
    }
}

/// An agent's name, such as `agent-1`. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AgentName(Arc<str>);

impl AgentName {
    /// Checks the name's form: see [`check_name`].
    pub fn new(name: &str) -> Result<AgentName, String> {
        check_name(name, "agent")?;
        Ok(AgentName(Arc::from(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The empty name, which sorts before every valid one: a bound for range scans, never an address.
    pub(crate) fn min() -> AgentName {
        AgentName(Arc::from(""))
    }
}

impl fmt::Display for AgentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for AgentName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Who sends a message, or whom it is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// One agent.
    Agent(AgentName),
    /// Every agent of a named group (that subscribes to the message's kind).
    Group(Arc<str>),
    /// Every live agent (that subscribes to the message's kind).
    All,
    /// A person, on a frontend: `user:console`, `user:alice`.
    User(Arc<str>),
    /// The swarm itself: notices to the captain come from here.
    System,
}

impl Address {
    pub fn agent(name: &AgentName) -> Address {
        Address::Agent(name.clone())
    }

    pub fn user(name: &str) -> Address {
        Address::User(Arc::from(name))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Agent(name) => write!(f, "{name}"),
            Address::Group(group) => write!(f, "group:{group}"),
            Address::All => f.write_str("all"),
            Address::User(user) => write!(f, "user:{user}"),
            Address::System => f.write_str("system"),
        }
    }
}

impl FromStr for Address {
    type Err = String;

    /// `agent-1`, `group:crew`, `all`, `user:alice`, `system`.
    fn from_str(s: &str) -> Result<Address, String> {
        if s == "all" {
            return Ok(Address::All);
        }
        if s == "system" {
            return Ok(Address::System);
        }
        if let Some(group) = s.strip_prefix("group:") {
            check_name(group, "group")?;
            return Ok(Address::Group(Arc::from(group)));
        }
        if let Some(user) = s.strip_prefix("user:") {
            check_name(user, "user")?;
            return Ok(Address::User(Arc::from(user)));
        }
        AgentName::new(s).map(Address::Agent)
    }
}

/// CellPhone traffic (agents and people talking) or CaptainPhone traffic (orders and control verbs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Cell,
    Captain,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Cell => "cell",
            Channel::Captain => "captain",
        }
    }
}

impl FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Channel, String> {
        match s {
            "cell" => Ok(Channel::Cell),
            "captain" => Ok(Channel::Captain),
            other => Err(format!("unknown channel `{other}`: use cell or captain")),
        }
    }
}

/// Delivery priority: an agent always takes the most urgent waiting message first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Priority, String> {
        match s {
            "low" => Ok(Priority::Low),
            "normal" => Ok(Priority::Normal),
            "high" => Ok(Priority::High),
            "urgent" => Ok(Priority::Urgent),
            other => Err(format!(
                "invalid priority `{other}`: use low, normal, high or urgent"
            )),
        }
    }
}

/// A message body: JSON text, checked when built, shared without copying between recipients.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Body(Arc<str>);

impl Body {
    pub fn from_value(value: &serde_json::Value) -> Body {
        Body(Arc::from(value.to_string()))
    }

    /// A body `{"text": ...}`, what people type.
    pub fn text(text: &str) -> Body {
        Body::from_value(&serde_json::json!({ "text": text }))
    }

    /// Parses JSON text; the error says why it is not JSON.
    pub fn from_json(text: &str) -> Result<Body, String> {
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| format!("body is not valid JSON: {e}"))?;
        Ok(Body(Arc::from(text)))
    }

    pub fn as_json(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// The `text` field of a body, when it has one.
    pub fn text_field(&self) -> Option<String> {
        match self.to_value() {
            serde_json::Value::Object(mut map) => match map.remove("text") {
                Some(serde_json::Value::String(text)) => Some(text),
                _ => None,
            },
            _ => None,
        }
    }
}

/// One message. `seq` and `accepted_at` are zero until the log accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: MessageId,
    pub seq: Seq,
    pub from: Address,
    pub to: Address,
    pub channel: Channel,
    pub priority: Priority,
    pub kind: Arc<str>,
    pub body: Body,
    pub reply_to: Option<MessageId>,
    pub created_at: Millis,
    pub accepted_at: Millis,
}

impl Envelope {
    /// A new, not yet accepted message.
    pub fn new(from: Address, to: Address, kind: &str, body: Body) -> Envelope {
        Envelope {
            id: MessageId::new(),
            seq: Seq(0),
            from,
            to,
            channel: Channel::Cell,
            priority: Priority::Normal,
            kind: Arc::from(kind),
            body,
            reply_to: None,
            created_at: Millis::now(),
            accepted_at: Millis(0),
        }
    }

    pub fn with_priority(mut self, priority: Priority) -> Envelope {
        self.priority = priority;
        self
    }

    pub fn with_channel(mut self, channel: Channel) -> Envelope {
        self.channel = channel;
        self
    }

    pub fn with_reply_to(mut self, id: MessageId) -> Envelope {
        self.reply_to = Some(id);
        self
    }
}

/// Names of agents, groups and users: 1–64 characters of ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit. `what` names the thing in the error.
pub fn check_name(name: &str, what: &str) -> Result<(), String> {
    let shown: String = name.chars().take(80).collect();
    let shown = if shown.len() < name.len() {
        format!("{shown}…")
    } else {
        shown
    };
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{shown}` is not a valid {what} name: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
        ))
    }
}

/// Words that address something other than one agent (`all`, `system`), so no agent may be named them.
pub const RESERVED_AGENT_NAMES: &[&str] = &["all", "system"];

/// The rule for naming a new agent: [`check_name`], in lower case (so `agent-1`, `Agent-1` and `AGENT-1` cannot
/// be three agents), and none of [`RESERVED_AGENT_NAMES`].
pub fn check_agent_name(name: &str) -> Result<(), String> {
    check_name(name, "agent")?;
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "`{name}` is not a valid agent name: agent names are lower case (try `{}`)",
            name.to_ascii_lowercase()
        ));
    }
    if RESERVED_AGENT_NAMES.contains(&name) {
        return Err(format!(
            "`{name}` cannot name an agent: it addresses {}; pick another name",
            if name == "all" {
                "every agent"
            } else {
                "the swarm itself"
            }
        ));
    }
    Ok(())
}

/// Message kinds: 1–64 characters of lowercase letters, digits, `-`, `_`, `.` and `:`.
pub fn check_kind(kind: &str) -> Result<(), String> {
    let shown: String = kind.chars().take(80).collect();
    let shown = if shown.len() < kind.len() {
        format!("{shown}…")
    } else {
        shown
    };
    let ok = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{shown}` is not a valid kind: use 1-64 lowercase letters, digits, '-', '_', '.' or ':'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_address(text: &str, expected: Result<&str, &str>) {
        match (text.parse::<Address>(), expected) {
            (Ok(addr), Ok(shown)) => assert_eq!(addr.to_string(), shown),
            (Err(err), Err(fragment)) => assert!(err.contains(fragment), "{err}"),
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn addresses_parse_and_print() {
        check_address("agent-1", Ok("agent-1"));
        check_address("group:crew", Ok("group:crew"));
        check_address("all", Ok("all"));
        check_address("user:alice", Ok("user:alice"));
        check_address("system", Ok("system"));
        check_address("group:", Err("not a valid group name"));
        check_address("bad name", Err("not a valid agent name"));
        check_address("", Err("not a valid agent name"));
    }

    #[test]
    fn new_agents_are_named_in_lower_case_and_not_after_addresses() {
        assert!(check_agent_name("agent-1").is_ok());
        for (bad, why) in [
            ("Agent-1", "lower case"),
            ("all", "every agent"),
            ("system", "the swarm itself"),
            ("bad name", "not a valid agent name"),
        ] {
            let err = check_agent_name(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        // An error repeats at most a few dozen characters of a bad name.
        assert!(
            check_agent_name(&"x".repeat(10_000))
                .expect_err("long")
                .len()
                < 300
        );
    }

    #[test]
    fn priorities_order_and_parse() {
        assert!(Priority::Urgent > Priority::High && Priority::High > Priority::Normal);
        assert_eq!("urgent".parse(), Ok(Priority::Urgent));
        assert!("asap"
            .parse::<Priority>()
            .expect_err("invalid")
            .contains("low, normal, high or urgent"));
    }

    #[test]
    fn envelope_round_trips_through_postcard_and_json() {
        let env = Envelope::new(
            Address::user("console"),
            "agent-1".parse().expect("address"),
            "ping",
            Body::text("hello"),
        )
        .with_priority(Priority::High);
        let bytes = postcard::to_allocvec(&env).expect("encode");
        let back: Envelope = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, env);
        let json = serde_json::to_string(&env).expect("json");
        assert!(json.contains(&env.id.to_string()), "{json}");
        let back: Envelope = serde_json::from_str(&json).expect("json decode");
        assert_eq!(back, env);
    }

    #[test]
    fn bodies_must_be_json() {
        assert!(Body::from_json("{\"a\":1}").is_ok());
        assert!(Body::from_json("{nope").is_err());
        assert_eq!(Body::text("hi").text_field().as_deref(), Some("hi"));
    }
}
