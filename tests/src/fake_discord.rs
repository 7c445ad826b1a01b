//! A fake Discord on 127.0.0.1: the REST API and the gateway, enough for the real serenity client in the
//! `dreamos` binary to connect, register its commands, receive interactions and answer them.
//!
//! It records every REST request, answers the ones serenity and our outbox make (DEVELOPERS.md lists the
//! facts this rests on), dedupes channel posts by `nonce` with `enforce_nonce` as Discord does, and can be told to
//! answer channel posts with a 429 or to hold them (never answer) for crash tests. Tests are synchronous: the
//! fake runs on its own tokio runtime, and every wait has a deadline.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{ws::Message, State, WebSocketUpgrade},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use parking_lot::{Condvar, Mutex};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The bot's application (and user) id in READY.
pub const APPLICATION_ID: u64 = 1000;
/// The guild interactions come from.
pub const GUILD_ID: u64 = 3000;
/// The channel interactions come from.
pub const CHANNEL_ID: u64 = 4000;

/// One REST request the fake received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Without `/api/v10` and without the query.
    pub path: String,
    pub body: Value,
    /// Attached files: name and text.
    pub files: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub at: Instant,
}

/// A member who runs interactions.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub roles: Vec<u64>,
}

impl Member {
    pub fn new(id: u64, name: &str, roles: &[u64]) -> Member {
        Member {
            id,
            name: name.to_string(),
            roles: roles.to_vec(),
        }
    }
}

#[derive(Default)]
struct Plans {
    /// Channel posts to answer with 429 before serving them, and the `retry_after` to give.
    rate_limit: u32,
    retry_after: f64,
    /// Channel posts are recorded and stored, but never answered.
    hold: bool,
}

#[derive(Default)]
struct Record {
    requests: Vec<Request>,
    identifies: Vec<Value>,
    /// Messages per channel, in order.
    channels: HashMap<u64, Vec<Value>>,
    /// (channel, nonce) → the message created for it.
    nonces: HashMap<(u64, String), Value>,
    /// An interaction token's response as it is now: the callback's data, then each edit.
    originals: HashMap<String, Value>,
}

struct Inner {
    record: Mutex<Record>,
    changed: Condvar,
    plans: Mutex<Plans>,
    gateway: Mutex<Option<mpsc::UnboundedSender<String>>>,
    seq: AtomicU64,
    ids: AtomicU64,
    port: AtomicU64,
}

/// The running fake. Dropping it stops it.
pub struct FakeDiscord {
    pub base_url: String,
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FakeDiscord {
    pub fn start() -> FakeDiscord {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the fake's runtime");
        let inner = Arc::new(Inner {
            record: Mutex::new(Record::default()),
            changed: Condvar::new(),
            plans: Mutex::new(Plans::default()),
            gateway: Mutex::new(None),
            seq: AtomicU64::new(1),
            ids: AtomicU64::new(90_000),
            port: AtomicU64::new(0),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the fake");
        let port = listener.local_addr().expect("address").port();
        inner.port.store(u64::from(port), Ordering::Release);
        let app = Router::new()
            .route("/gateway", get(gateway))
            .fallback(rest)
            .with_state(inner.clone());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDiscord {
            base_url: format!("http://127.0.0.1:{port}"),
            inner,
            runtime: Some(runtime),
        }
    }

    /// Answers the next `count` channel posts with 429 and `retry_after` seconds.
    pub fn rate_limit_channel_posts(&self, count: u32, retry_after: f64) {
        let mut plans = self.inner.plans.lock();
        plans.rate_limit = count;
        plans.retry_after = retry_after;
    }

    /// Records channel posts but never answers them (until told otherwise).
    pub fn hold_channel_posts(&self, hold: bool) {
        self.inner.plans.lock().hold = hold;
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.inner.record.lock().requests.clone()
    }

    /// Waits (bounded) for a request matching `pred`, looking at those already received first.
    pub fn wait_request(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Request) -> bool,
    ) -> Request {
        self.wait(what, timeout, |record| {
            record.requests.iter().find(|r| pred(r)).cloned()
        })
    }

    /// How many requests match `pred`.
    pub fn count(&self, pred: impl Fn(&Request) -> bool) -> usize {
        self.inner
            .record
            .lock()
            .requests
            .iter()
            .filter(|r| pred(r))
            .count()
    }

    /// The IDENTIFY payloads received on the gateway.
    pub fn identifies(&self) -> Vec<Value> {
        self.inner.record.lock().identifies.clone()
    }

    /// Waits until the bot has identified `n` times (and so has READY).
    pub fn wait_identified(&self, n: usize, timeout: Duration) {
        self.wait("the bot to identify", timeout, |record| {
            (record.identifies.len() >= n).then_some(())
        });
    }

    /// Messages posted to a channel so far.
    pub fn channel(&self, channel: u64) -> Vec<Value> {
        self.inner
            .record
            .lock()
            .channels
            .get(&channel)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits for a channel message matching `pred`.
    pub fn wait_channel_message(
        &self,
        channel: u64,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait(
            &format!("a message in channel {channel}"),
            timeout,
            |record| {
                record
                    .channels
                    .get(&channel)
                    .and_then(|messages| messages.iter().find(|m| pred(m)).cloned())
            },
        )
    }

    /// Sends an APPLICATION_COMMAND interaction; returns its token.
    pub fn command(&self, member: &Member, name: &str, options: Value) -> String {
        self.interaction(2, member, name, options)
    }

    /// Sends an APPLICATION_COMMAND_AUTOCOMPLETE interaction; returns its token.
    pub fn autocomplete(&self, member: &Member, name: &str, options: Value) -> String {
        self.interaction(4, member, name, options)
    }

    /// Sends a MESSAGE_COMPONENT interaction: `member` clicks the button `custom_id` on a message of the bot's;
    /// returns its token.
    pub fn click(&self, member: &Member, custom_id: &str) -> String {
        let id = self.inner.ids.fetch_add(1, Ordering::AcqRel);
        let token = format!("interaction-token-{id}");
        let message = self.inner.ids.fetch_add(1, Ordering::AcqRel);
        self.dispatch(
            "INTERACTION_CREATE",
            component_payload(id, &token, member, custom_id, message),
        );
        token
    }

    fn interaction(&self, kind: u8, member: &Member, name: &str, options: Value) -> String {
        let id = self.inner.ids.fetch_add(1, Ordering::AcqRel);
        let token = format!("interaction-token-{id}");
        self.dispatch(
            "INTERACTION_CREATE",
            interaction_payload(id, &token, kind, member, name, options),
        );
        token
    }

    /// Sends a gateway dispatch to the connected bot (waiting, bounded, for it to connect).
    pub fn dispatch(&self, event: &str, data: Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(tx) = self.inner.gateway.lock().as_ref() {
                let s = self.inner.seq.fetch_add(1, Ordering::AcqRel);
                let frame = json!({ "op": 0, "s": s, "t": event, "d": data }).to_string();
                if tx.send(frame).is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no bot connected to the fake gateway"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The interaction callback for `token` (type and data), waiting for it.
    pub fn callback(&self, token: &str, timeout: Duration) -> Request {
        self.wait_request(&format!("the callback of {token}"), timeout, |r| {
            r.method == "POST" && r.path.starts_with("/interactions/") && r.path.contains(token)
        })
    }

    /// Waits until an interaction's response (its callback content, or the latest edit) matches `pred`.
    pub fn wait_response(
        &self,
        token: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait(&format!("the response of {token}"), timeout, |record| {
            record.originals.get(token).filter(|v| pred(v)).cloned()
        })
    }

    /// Requests made for one interaction token (callback, edits, followups), in order.
    pub fn for_token(&self, token: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.contains(token))
            .collect()
    }

    fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut found: impl FnMut(&Record) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut record = self.inner.record.lock();
        loop {
            if let Some(value) = found(&record) {
                return value;
            }
            if self
                .inner
                .changed
                .wait_until(&mut record, deadline)
                .timed_out()
            {
                if let Some(value) = found(&record) {
                    return value;
                }
                let recent: Vec<String> = record
                    .requests
                    .iter()
                    .rev()
                    .take(20)
                    .map(|r| format!("{} {} {}", r.method, r.path, clip(&r.body.to_string())))
                    .collect();
                panic!(
                    "the fake Discord saw no {what} within {timeout:?}; latest requests:\n{}",
                    recent.join("\n")
                );
            }
        }
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

/// An interaction as Discord sends it, with every field serenity 0.12.5 requires.
pub fn interaction_payload(
    id: u64,
    token: &str,
    kind: u8,
    member: &Member,
    name: &str,
    options: Value,
) -> Value {
    json!({
        "id": id.to_string(),
        "application_id": APPLICATION_ID.to_string(),
        "type": kind,
        "token": token,
        "version": 1,
        "guild_id": GUILD_ID.to_string(),
        "channel_id": CHANNEL_ID.to_string(),
        "member": {
            "user": {
                "id": member.id.to_string(),
                "username": member.name,
                "discriminator": "0",
                "global_name": null,
                "avatar": null
            },
            "roles": member.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "joined_at": "2024-01-01T00:00:00.000000+00:00",
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "permissions": "2147483647",
            "nick": null
        },
        "data": {
            "id": "7000",
            "name": name,
            "type": 1,
            "guild_id": GUILD_ID.to_string(),
            "options": options
        },
        "app_permissions": "2147483647",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": { "0": GUILD_ID.to_string() },
        "context": 0,
        "attachment_size_limit": 26214400
    })
}

/// A button click (MESSAGE_COMPONENT, type 3) on message `message` of the bot, with every field serenity 0.12.5
/// requires: the message the button is on, and `data` with `custom_id` and `component_type` 2 (a button).
pub fn component_payload(
    id: u64,
    token: &str,
    member: &Member,
    custom_id: &str,
    message: u64,
) -> Value {
    let mut payload = interaction_payload(id, token, 3, member, "", json!([]));
    let mut on = message_payload(message, CHANNEL_ID, "a message with buttons", &[], None);
    on["components"] = json!([{
        "type": 1,
        "components": [{ "type": 2, "style": 3, "label": "Approve", "custom_id": custom_id }]
    }]);
    payload["message"] = on;
    payload["data"] = json!({ "custom_id": custom_id, "component_type": 2 });
    payload
}

/// Options of a slash command: `opts(&[("agent", json!("agent-1")), ("wait", json!(true))])`. Strings, integers and
/// booleans get their Discord types.
pub fn opts(pairs: &[(&str, Value)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(name, value)| {
                let kind = match value {
                    Value::Bool(_) => 5,
                    Value::Number(_) => 4,
                    _ => 3,
                };
                json!({ "name": name, "type": kind, "value": value })
            })
            .collect(),
    )
}

/// A subcommand with its options: `sub("spawn", opts(...))`.
pub fn sub(name: &str, options: Value) -> Value {
    json!([{ "name": name, "type": 1, "options": options }])
}

/// The focused option of an autocomplete interaction (its value is always a string).
pub fn focused(name: &str, partial: &str) -> Value {
    json!([{ "name": name, "type": 3, "value": partial, "focused": true }])
}

/// The focused option of an autocomplete interaction on an integer option (`type` 4, its value still a string).
pub fn focused_integer(name: &str, partial: &str) -> Value {
    json!([{ "name": name, "type": 4, "value": partial, "focused": true }])
}

/// Every kind of payload the tests send, for the unit test that deserializes each with serenity.
pub fn fixtures() -> Vec<(&'static str, Value)> {
    let member = Member::new(5000, "alice", &[6001]);
    vec![
        (
            "command with string, integer and boolean options",
            interaction_payload(
                1,
                "t1",
                2,
                &member,
                "send",
                opts(&[
                    ("agent", json!("agent-1")),
                    ("text", json!("hi")),
                    ("wait", json!(true)),
                ]),
            ),
        ),
        (
            "command with an integer",
            interaction_payload(2, "t2", 2, &member, "history", opts(&[("limit", json!(5))])),
        ),
        (
            "subcommand",
            interaction_payload(
                3,
                "t3",
                2,
                &member,
                "agent",
                sub("stop", opts(&[("name", json!("agent-2"))])),
            ),
        ),
        (
            "autocomplete",
            interaction_payload(4, "t4", 4, &member, "send", focused("agent", "age")),
        ),
        (
            "autocomplete of an integer option in a subcommand",
            interaction_payload(
                6,
                "t6",
                4,
                &member,
                "task",
                sub("approve", focused_integer("id", "1")),
            ),
        ),
        (
            "a button click",
            component_payload(7, "t7", &member, "task.approve.17", 8),
        ),
        (
            "member without roles",
            interaction_payload(
                5,
                "t5",
                2,
                &Member::new(5001, "bob", &[]),
                "status",
                json!([]),
            ),
        ),
    ]
}

/// READY, as the fake sends it after IDENTIFY.
pub fn ready_payload(port: u64) -> Value {
    json!({
        "v": 10,
        "user": {
            "id": APPLICATION_ID.to_string(),
            "username": "dreamos",
            "discriminator": "0",
            "avatar": null,
            "bot": true
        },
        "guilds": [],
        "session_id": "session-1",
        "resume_gateway_url": format!("ws://127.0.0.1:{port}/gateway"),
        "application": { "id": APPLICATION_ID.to_string(), "flags": 0 }
    })
}

/// A message object as Discord returns it.
pub fn message_payload(
    id: u64,
    channel: u64,
    content: &str,
    files: &[(String, String)],
    nonce: Option<&Value>,
) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": channel.to_string(),
        "author": { "id": APPLICATION_ID.to_string(), "username": "dreamos" },
        "content": content,
        "timestamp": "2024-01-01T00:00:00.000000+00:00",
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": files.iter().enumerate().map(|(i, (name, text))| json!({
            "id": (id * 10 + i as u64).to_string(),
            "filename": name,
            "size": text.len(),
            "url": format!("http://127.0.0.1/attachments/{name}"),
            "proxy_url": format!("http://127.0.0.1/attachments/{name}")
        })).collect::<Vec<_>>(),
        "embeds": [],
        "pinned": false,
        "type": 0,
        "nonce": nonce.cloned().unwrap_or(Value::Null)
    })
}

async fn gateway(State(inner): State<Arc<Inner>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |mut socket| async move {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let hello = json!({ "op": 10, "d": { "heartbeat_interval": 45000 } }).to_string();
        if socket.send(Message::Text(hello)).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                frame = rx.recv() => match frame {
                    Some(frame) => if socket.send(Message::Text(frame)).await.is_err() { return },
                    None => return,
                },
                incoming = socket.recv() => {
                    let Some(Ok(message)) = incoming else { return };
                    let Message::Text(text) = message else { continue };
                    let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                    match frame["op"].as_u64() {
                        Some(2) => {
                            let port = inner.port.load(Ordering::Acquire);
                            let ready = json!({ "op": 0, "s": inner.seq.fetch_add(1, Ordering::AcqRel), "t": "READY", "d": ready_payload(port) });
                            if socket.send(Message::Text(ready.to_string())).await.is_err() { return }
                            *inner.gateway.lock() = Some(tx.clone());
                            inner.record.lock().identifies.push(frame["d"].clone());
                            inner.changed.notify_all();
                        }
                        Some(1) if socket.send(Message::Text(json!({ "op": 11 }).to_string())).await.is_err() => return,
                        Some(6) => {
                            let resumed = json!({ "op": 0, "s": inner.seq.fetch_add(1, Ordering::AcqRel), "t": "RESUMED", "d": {} });
                            if socket.send(Message::Text(resumed.to_string())).await.is_err() { return }
                            *inner.gateway.lock() = Some(tx.clone());
                        }
                        _ => {}
                    }
                }
            }
        }
    })
}

async fn rest(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path()
        .strip_prefix("/api/v10")
        .unwrap_or(uri.path())
        .to_string();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (json_body, files) = if content_type.starts_with("multipart/form-data") {
        parse_multipart(&content_type, &body)
    } else {
        (
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            Vec::new(),
        )
    };
    let request = Request {
        method: method.to_string(),
        path: path.clone(),
        body: json_body.clone(),
        files: files.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        at: Instant::now(),
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let id = || inner.ids.fetch_add(1, Ordering::AcqRel);
    let record = |inner: &Inner, request: Request| {
        inner.record.lock().requests.push(request);
        inner.changed.notify_all();
    };
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["gateway"]) => {
            record(&inner, request);
            let port = inner.port.load(Ordering::Acquire);
            json_response(
                StatusCode::OK,
                json!({ "url": format!("ws://127.0.0.1:{port}/gateway") }),
            )
        }
        ("GET", ["noop"]) => json_response(StatusCode::OK, json!({})),
        ("PUT", ["applications", _, "guilds", _, "commands"])
        | ("PUT", ["applications", _, "commands"]) => {
            record(&inner, request);
            json_response(StatusCode::OK, json!([]))
        }
        ("POST", ["interactions", _, token, "callback"]) => {
            let token = token.to_string();
            {
                let mut rec = inner.record.lock();
                let data = json_body["data"].clone();
                rec.originals.insert(token, data);
                rec.requests.push(request);
            }
            inner.changed.notify_all();
            StatusCode::NO_CONTENT.into_response()
        }
        ("PATCH", ["webhooks", _, token, "messages", "@original"]) => {
            let token = token.to_string();
            {
                let mut rec = inner.record.lock();
                let current = rec.originals.entry(token).or_insert(json!({}));
                if let (Some(current), Some(edit)) =
                    (current.as_object_mut(), json_body.as_object())
                {
                    for (k, v) in edit {
                        current.insert(k.clone(), v.clone());
                    }
                }
                if !files.is_empty() {
                    current["files"] = json!(files
                        .iter()
                        .map(|(n, t)| json!({"name": n, "text": t}))
                        .collect::<Vec<_>>());
                }
                rec.requests.push(request);
            }
            inner.changed.notify_all();
            let content = json_body["content"].as_str().unwrap_or("");
            json_response(
                StatusCode::OK,
                message_payload(id(), CHANNEL_ID, content, &files, None),
            )
        }
        ("POST", ["webhooks", _, _token]) | ("PATCH", ["webhooks", _, _token, "messages", _]) => {
            record(&inner, request);
            let content = json_body["content"].as_str().unwrap_or("");
            json_response(
                StatusCode::OK,
                message_payload(id(), CHANNEL_ID, content, &files, None),
            )
        }
        ("GET", ["webhooks", _, _token, "messages", _]) => {
            record(&inner, request);
            json_response(
                StatusCode::OK,
                message_payload(id(), CHANNEL_ID, "", &[], None),
            )
        }
        ("DELETE", _) => {
            record(&inner, request);
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["channels", channel, "messages"]) => {
            let channel: u64 = channel.parse().unwrap_or(0);
            record(&inner, request);
            {
                let mut plans = inner.plans.lock();
                if plans.rate_limit > 0 {
                    plans.rate_limit -= 1;
                    let retry = plans.retry_after;
                    let mut response = json_response(
                        StatusCode::TOO_MANY_REQUESTS,
                        json!({ "message": "You are being rate limited.", "retry_after": retry, "global": false, "code": 0 }),
                    );
                    let h = response.headers_mut();
                    h.insert(
                        "retry-after",
                        retry.ceil().to_string().parse().expect("header"),
                    );
                    h.insert("x-ratelimit-remaining", "0".parse().expect("header"));
                    h.insert(
                        "x-ratelimit-reset-after",
                        retry.to_string().parse().expect("header"),
                    );
                    return response;
                }
            }
            let nonce = json_body.get("nonce").filter(|n| !n.is_null()).cloned();
            let enforce = json_body["enforce_nonce"].as_bool().unwrap_or(false);
            let message = {
                let mut rec = inner.record.lock();
                let key = nonce.as_ref().map(|n| (channel, n.to_string()));
                match key
                    .as_ref()
                    .and_then(|k| rec.nonces.get(k))
                    .filter(|_| enforce)
                {
                    Some(existing) => existing.clone(),
                    None => {
                        let content = json_body["content"].as_str().unwrap_or("");
                        let message =
                            message_payload(id(), channel, content, &files, nonce.as_ref());
                        rec.channels
                            .entry(channel)
                            .or_default()
                            .push(message.clone());
                        if let Some(key) = key {
                            rec.nonces.insert(key, message.clone());
                        }
                        message
                    }
                }
            };
            inner.changed.notify_all();
            if inner.plans.lock().hold {
                // Never answered: the bot is killed while it waits.
                std::future::pending::<()>().await;
            }
            json_response(StatusCode::OK, message)
        }
        _ => {
            record(&inner, request);
            json_response(
                StatusCode::NOT_FOUND,
                json!({ "code": 0, "message": format!("the fake has no {method} {path}") }),
            )
        }
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `payload_json` and `files[n]` parts of a multipart body.
fn parse_multipart(content_type: &str, body: &[u8]) -> (Value, Vec<(String, String)>) {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return (Value::Null, Vec::new());
    };
    let boundary = format!("--{}", boundary.trim_matches('"'));
    let text = String::from_utf8_lossy(body);
    let mut payload = Value::Null;
    let mut files = Vec::new();
    for part in text.split(boundary.as_str()) {
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("");
        if name == "payload_json" {
            payload = serde_json::from_str(content).unwrap_or(Value::Null);
        } else if name.starts_with("files[") {
            let filename = head
                .split("filename=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("")
                .to_string();
            files.push((filename, content.to_string()));
        }
    }
    (payload, files)
}
