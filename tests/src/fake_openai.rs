//! A scripted OpenAI-compatible server on 127.0.0.1 for tests of the LLM bridge.
//!
//! Each request to `/v1/chat/completions` or `/v1/embeddings` takes the next [`Reply`] from the script (a plain
//! answer when the script is empty) and is recorded with its headers and JSON body, so that a test can count
//! calls and check what was sent. Replies cover what a real server does: answers with usage, streams of chunks,
//! tool calls, 429 with `Retry-After`, 5xx, malformed bodies, and a connection that never answers.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use parking_lot::Mutex;
use serde_json::{json, Value};

/// What the fake answers one request with.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A status, extra headers and a JSON body.
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// A status and a body sent as it is (malformed JSON, say).
    Raw { status: u16, body: String },
    /// A `text/event-stream` answer: each event's data, then `data: [DONE]` when `done`.
    Stream {
        events: Vec<Value>,
        done: bool,
        /// A pause before each event.
        pause: Duration,
    },
    /// Accepts the request and never answers.
    Hang,
}

impl Reply {
    /// A 200 answer with this JSON body.
    pub fn ok(body: Value) -> Reply {
        Reply::Json {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }
}

/// A fixture repository with a known layout, `dir/tinyrepo`: `src/lib.rs` (`load`, calling `parser::parse`) and
/// `src/parser.rs` (`parse`, on line 2). Returns its path.
pub fn tinyrepo(dir: &std::path::Path) -> std::path::PathBuf {
    let repo = dir.join("tinyrepo");
    std::fs::create_dir_all(repo.join("src")).expect("repo");
    std::fs::write(
        repo.join("src/lib.rs"),
        "//! The fixture.\n\npub mod parser;\n\n/// Reads a file.\npub fn load(path: &str) -> String {\n    parser::parse(path)\n}\n",
    )
    .expect("write");
    std::fs::write(
        repo.join("src/parser.rs"),
        "/// Parses text.\npub fn parse(text: &str) -> String {\n    text.to_uppercase()\n}\n",
    )
    .expect("write");
    repo
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

/// The running fake; it stops with the runtime that started it.
pub struct FakeOpenAi {
    /// The base URL to configure (`http://127.0.0.1:PORT/v1`).
    pub base_url: String,
    inner: Arc<Inner>,
}

impl FakeOpenAi {
    /// Starts the fake on a free port of 127.0.0.1, on the current tokio runtime.
    pub async fn start() -> FakeOpenAi {
        let inner = Arc::new(Inner::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake OpenAI server");
        let port = listener.local_addr().expect("address").port();
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .route("/v1/embeddings", post(handle))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOpenAi {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            inner,
        }
    }

    /// Adds replies to the end of the script.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().extend(replies);
    }

    /// Every request so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().clone()
    }

    pub fn requests(&self) -> usize {
        self.inner.received.lock().len()
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let path = uri.path().to_string();
    inner.received.lock().push(Received {
        path: path.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: body.clone(),
        at: Instant::now(),
    });
    let reply = inner.script.lock().pop_front();
    let reply = reply.unwrap_or_else(|| {
        if path.ends_with("/embeddings") {
            Reply::Json {
                status: 200,
                headers: Vec::new(),
                body: embeddings(&body),
            }
        } else {
            Reply::Json {
                status: 200,
                headers: Vec::new(),
                body: answer("ok", 10, 1),
            }
        }
    });
    match reply {
        Reply::Json {
            status,
            headers,
            body,
        } => {
            let mut response = (status_code(status), axum::Json(body)).into_response();
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::from_bytes(name.as_bytes()),
                    axum::http::HeaderValue::from_str(&value),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Reply::Raw { status, body } => (
            status_code(status),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
        Reply::Stream {
            events,
            done,
            pause,
        } => {
            let stream = futures::stream::unfold(
                (events.into_iter(), done, false),
                move |(mut events, done, finished)| async move {
                    if finished {
                        return None;
                    }
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    match events.next() {
                        Some(event) => Some((
                            Ok::<_, std::convert::Infallible>(format!("data: {event}\n\n")),
                            (events, done, false),
                        )),
                        None if done => {
                            Some((Ok("data: [DONE]\n\n".to_string()), (events, done, true)))
                        }
                        None => None,
                    }
                },
            );
            Response::builder()
                .status(200)
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Reply::Hang => {
            std::future::pending::<()>().await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A whole chat answer with `content` and the given usage.
pub fn answer(content: &str, prompt_tokens: u32, completion_tokens: u32) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_796_000_000u32,
        "model": "fake-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    })
}

/// A whole answer that calls functions: `(id, name, arguments)` each.
pub fn tool_calls(
    calls: &[(&str, &str, Value)],
    prompt_tokens: u32,
    completion_tokens: u32,
) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, arguments)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments.to_string()}})
        })
        .collect();
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_796_000_000u32,
        "model": "fake-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": null, "tool_calls": calls},
            "finish_reason": "tool_calls"
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    })
}

/// One chunk of a streamed answer: a piece of text, or the finish reason when `text` is `None`.
pub fn chunk(text: Option<&str>, finish: Option<&str>) -> Value {
    let delta = match text {
        Some(text) => json!({"content": text}),
        None => json!({}),
    };
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_796_000_000u32,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    })
}

/// A chunk carrying a piece of a tool call.
pub fn tool_chunk(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> Value {
    let mut call = json!({"index": index, "function": {"arguments": arguments}});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_796_000_000u32,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}]
    })
}

/// The last chunk of a stream with `include_usage`: no choices, the usage.
pub fn usage_chunk(prompt_tokens: u32, completion_tokens: u32) -> Value {
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_796_000_000u32,
        "model": "fake-model",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    })
}

/// An embeddings answer for the request's inputs: vector `[i, len]` for input `i`.
fn embeddings(request: &Value) -> Value {
    let inputs: Vec<String> = match &request["input"] {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect(),
        Value::String(text) => vec![text.clone()],
        _ => Vec::new(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": [i as f32, text.len() as f32]}))
        .collect();
    json!({
        "object": "list",
        "model": "fake-embeddings",
        "data": data,
        "usage": {"prompt_tokens": inputs.len() * 2, "total_tokens": inputs.len() * 2}
    })
}

/// An embeddings answer with these vectors, in order.
pub fn embeddings_of(vectors: &[Vec<f32>]) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    json!({
        "object": "list",
        "model": "fake-embeddings",
        "data": data,
        "usage": {"prompt_tokens": vectors.len() * 3, "total_tokens": vectors.len() * 3}
    })
}
