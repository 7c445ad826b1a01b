//! Calls to an OpenAI-compatible server: chat completions (whole or streamed) and embeddings.
//!
//! Requests and answers are async-openai's types; the HTTP is ours (reqwest), because the retry policy needs what
//! that crate's client hides: the status code and the `Retry-After` header. The policy, per call:
//!
//! - at most `llm.max_attempts` attempts, all within `llm.request_timeout`;
//! - 429: wait as long as `Retry-After` says (seconds or an HTTP date), or back off when it says nothing; a wait
//!   over `llm.max_retry_wait` fails the call at once with `rate_limited` instead of sleeping;
//! - 5xx, a refused or reset connection: back off (250 ms doubling, full jitter, capped by `max_retry_wait`);
//! - no answer within `llm.read_timeout` (for a stream: no next chunk): `timeout`, not retried, since the
//!   server is busy or hung and a retry would wait as long again;
//! - any other 4xx is not retried: a prompt over the context is `context_too_long`, the rest `llm_refused`.
//!
//! A streamed answer is retried only before its first byte: after that, text has reached the caller.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_openai::types::{
    chat::{
        ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessage,
        ChatCompletionRequestAssistantMessageContent, ChatCompletionRequestMessage,
        ChatCompletionRequestSystemMessage, ChatCompletionRequestSystemMessageContent,
        ChatCompletionRequestUserMessage, ChatCompletionRequestUserMessageContent,
        ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionTools,
        CreateChatCompletionRequest, CreateChatCompletionResponse,
        CreateChatCompletionStreamResponse, FinishReason, FunctionObject,
    },
    embeddings::{CreateEmbeddingRequest, CreateEmbeddingResponse, EmbeddingInput},
};
use dreamos_runtime::config::{LlmConfig, LlmModelConfig};
use futures::StreamExt;
use rand::Rng;
use tokio::time::Instant;

use super::{millis, sse, LlmError};

/// The largest whole (not streamed) answer read.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// The first wait of the backoff; it doubles per attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(250);

/// An API key: shown as `<redacted>` by `Debug`, never formatted anywhere.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One server: its base URL (without a trailing slash) and key.
#[derive(Debug, Clone)]
struct Server {
    base_url: String,
    key: Option<Secret>,
}

/// What to ask a model.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub messages: Vec<ChatCompletionRequestMessage>,
    /// Functions the model may call; empty for none.
    pub tools: Vec<ChatCompletionTools>,
    /// The most tokens of the answer; `None`: the model's `max_output`.
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// Adds a system message.
    pub fn system(mut self, text: impl Into<String>) -> ChatRequest {
        self.messages.push(ChatCompletionRequestMessage::System(
            ChatCompletionRequestSystemMessage {
                content: ChatCompletionRequestSystemMessageContent::Text(text.into()),
                name: None,
            },
        ));
        self
    }

    /// Adds a user message.
    pub fn user(mut self, text: impl Into<String>) -> ChatRequest {
        self.messages.push(ChatCompletionRequestMessage::User(
            ChatCompletionRequestUserMessage {
                content: ChatCompletionRequestUserMessageContent::Text(text.into()),
                name: None,
            },
        ));
        self
    }

    /// Adds an assistant message (an earlier answer of the conversation).
    pub fn assistant(mut self, text: impl Into<String>) -> ChatRequest {
        self.messages.push(ChatCompletionRequestMessage::Assistant(
            ChatCompletionRequestAssistantMessage {
                content: Some(ChatCompletionRequestAssistantMessageContent::Text(
                    text.into(),
                )),
                ..Default::default()
            },
        ));
        self
    }

    /// Offers a function the model may call; `parameters` is its JSON schema.
    pub fn tool(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> ChatRequest {
        self.tools
            .push(ChatCompletionTools::Function(ChatCompletionTool {
                function: FunctionObject {
                    name: name.into(),
                    description: Some(description.into()),
                    parameters: Some(parameters),
                    strict: None,
                },
            }));
        self
    }

    pub fn max_tokens(mut self, max: u32) -> ChatRequest {
        self.max_tokens = Some(max);
        self
    }

    pub fn temperature(mut self, temperature: f32) -> ChatRequest {
        self.temperature = Some(temperature);
        self
    }
}

/// Tokens a call used, as the server counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A function the model asked to call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it (it may not parse).
    pub arguments: String,
}

/// A model's answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    /// The configured model that answered.
    pub model: String,
    /// The model name the server reported.
    pub served_by: String,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<FinishReason>,
    /// `None` when the server reported no usage.
    pub usage: Option<Usage>,
    /// HTTP attempts it took (1 without retries).
    pub attempts: u32,
}

/// Vectors for texts, in the order given.
#[derive(Debug, Clone)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub prompt_tokens: u64,
}

/// The bridge to the configured servers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: LlmConfig,
    /// Each model's server, by model name.
    servers: HashMap<String, Server>,
}

impl Bridge {
    /// Builds the bridge from `[llm]`, reading the API keys from the environment. `Err(NotConfigured)` when no
    /// model is configured.
    pub fn new(config: &LlmConfig) -> Result<Bridge, LlmError> {
        Bridge::with_env(config, |var| std::env::var(var).ok())
    }

    /// [`Bridge::new`] with the environment given as a function (for tests).
    pub fn with_env(
        config: &LlmConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Bridge, LlmError> {
        if config.models.is_empty() {
            return Err(LlmError::NotConfigured);
        }
        let mut servers = HashMap::new();
        for model in &config.models {
            let base_url = if model.base_url.is_empty() {
                &config.base_url
            } else {
                &model.base_url
            };
            let key_var = if model.api_key_env.is_empty() {
                &config.api_key_env
            } else {
                &model.api_key_env
            };
            let key = if key_var.is_empty() {
                None
            } else {
                match env(key_var) {
                    Some(key) if !key.is_empty() => Some(Secret(key)),
                    _ => {
                        return Err(LlmError::MissingKey {
                            var: key_var.clone(),
                        })
                    }
                }
            };
            servers.insert(
                model.name.clone(),
                Server {
                    base_url: base_url.trim_end_matches('/').to_string(),
                    key,
                },
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| LlmError::Unreachable {
                url: config.base_url.clone(),
                cause: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Bridge {
            inner: Arc::new(Inner {
                http,
                config: config.clone(),
                servers,
            }),
        })
    }

    /// The configured models, in order.
    pub fn models(&self) -> &[LlmModelConfig] {
        &self.inner.config.models
    }

    /// A configured model by name.
    pub fn model(&self, name: &str) -> Option<&LlmModelConfig> {
        self.inner.config.models.iter().find(|m| m.name == name)
    }

    fn server(&self, model: &LlmModelConfig) -> Result<&Server, LlmError> {
        self.inner
            .servers
            .get(&model.name)
            .ok_or_else(|| LlmError::Malformed {
                url: String::new(),
                what: format!("model `{}` is not configured", model.name),
            })
    }

    fn body(
        &self,
        model: &LlmModelConfig,
        request: &ChatRequest,
        stream: bool,
    ) -> serde_json::Value {
        let wire = CreateChatCompletionRequest {
            model: model.name.clone(),
            messages: request.messages.clone(),
            tools: (!request.tools.is_empty()).then(|| request.tools.clone()),
            temperature: request.temperature,
            stream: stream.then_some(true),
            stream_options: stream.then_some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            }),
            ..Default::default()
        };
        let mut body = serde_json::to_value(&wire).unwrap_or(serde_json::Value::Null);
        // `max_tokens`, not `max_completion_tokens`: every OpenAI-compatible server takes it.
        let max_tokens = request
            .max_tokens
            .unwrap_or(model.max_output)
            .min(model.max_output);
        if let Some(map) = body.as_object_mut() {
            map.insert("max_tokens".to_string(), max_tokens.into());
        }
        body
    }

    /// Asks `model` and waits for the whole answer.
    pub async fn chat(
        &self,
        model: &LlmModelConfig,
        request: &ChatRequest,
    ) -> Result<Answer, LlmError> {
        let server = self.server(model)?;
        let deadline = Instant::now() + self.inner.config.request_timeout;
        let body = self.body(model, request, false);
        let (response, attempts) = self
            .send(server, model, "/chat/completions", &body, deadline)
            .await?;
        let url = endpoint(server, "/chat/completions");
        let bytes = self.read_body(response, &url, deadline).await?;
        let wire: CreateChatCompletionResponse =
            serde_json::from_slice(&bytes).map_err(|e| LlmError::Malformed {
                url: url.clone(),
                what: format!("not a chat completion ({e})"),
            })?;
        let choice = wire
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| LlmError::Malformed {
                url: url.clone(),
                what: "an answer without choices".to_string(),
            })?;
        let tool_calls = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .filter_map(|call| match call {
                ChatCompletionMessageToolCalls::Function(f) => Some(ToolCall {
                    id: f.id,
                    name: f.function.name,
                    arguments: f.function.arguments,
                }),
                ChatCompletionMessageToolCalls::Custom(_) => None,
            })
            .collect();
        Ok(Answer {
            model: model.name.clone(),
            served_by: wire.model,
            content: choice.message.content.unwrap_or_default(),
            tool_calls,
            finish_reason: choice.finish_reason,
            usage: wire.usage.map(|u| Usage {
                prompt_tokens: u64::from(u.prompt_tokens),
                completion_tokens: u64::from(u.completion_tokens),
            }),
            attempts,
        })
    }

    /// Asks `model` for a streamed answer: `on_text` gets each piece of text as it arrives; the whole answer is
    /// returned at the end.
    pub async fn chat_stream(
        &self,
        model: &LlmModelConfig,
        request: &ChatRequest,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Answer, LlmError> {
        let server = self.server(model)?;
        let url = endpoint(server, "/chat/completions");
        let deadline = Instant::now() + self.inner.config.request_timeout;
        let body = self.body(model, request, true);
        let (response, attempts) = self
            .send(server, model, "/chat/completions", &body, deadline)
            .await?;
        let mut stream = response.bytes_stream();
        let mut decoder = sse::Decoder::default();
        let mut answer = Answer {
            model: model.name.clone(),
            served_by: String::new(),
            content: String::new(),
            tool_calls: Vec::new(),
            finish_reason: None,
            usage: None,
            attempts,
        };
        // Tool calls arrive in pieces, joined by their index.
        let mut calls: std::collections::BTreeMap<u32, ToolCall> =
            std::collections::BTreeMap::new();
        let read_timeout = self.inner.config.read_timeout;
        let mut done = false;
        while !done {
            let wait = read_timeout.min(deadline.saturating_duration_since(Instant::now()));
            let next = match tokio::time::timeout(wait, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    return Err(LlmError::Timeout {
                        url,
                        what: "the next chunk of a streamed answer",
                        millis: millis(wait),
                    })
                }
            };
            let events = match next {
                Some(Ok(bytes)) => decoder.feed(&bytes),
                Some(Err(e)) => {
                    return Err(LlmError::Unreachable {
                        url,
                        cause: format!("the stream broke off: {}", error_chain(&e)),
                    })
                }
                None => {
                    return Err(LlmError::Malformed {
                        url,
                        what: "the stream ended before `data: [DONE]`".to_string(),
                    })
                }
            }
            .map_err(|what| LlmError::Malformed {
                url: url.clone(),
                what,
            })?;
            for event in events {
                if event.trim() == "[DONE]" {
                    done = true;
                    break;
                }
                let chunk: CreateChatCompletionStreamResponse = match serde_json::from_str(&event) {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        // A server may report a failure inside the stream.
                        if let Some(error) = api_error(event.as_bytes()) {
                            return Err(classify(model, &url, 500, &error, 1));
                        }
                        return Err(LlmError::Malformed {
                            url,
                            what: format!("a chunk that is not a chat completion chunk ({e})"),
                        });
                    }
                };
                if answer.served_by.is_empty() {
                    answer.served_by = chunk.model.clone();
                }
                if let Some(usage) = chunk.usage {
                    answer.usage = Some(Usage {
                        prompt_tokens: u64::from(usage.prompt_tokens),
                        completion_tokens: u64::from(usage.completion_tokens),
                    });
                }
                for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
                    if let Some(text) = choice.delta.content {
                        if !text.is_empty() {
                            on_text(&text);
                            answer.content.push_str(&text);
                        }
                    }
                    for piece in choice.delta.tool_calls.unwrap_or_default() {
                        let call = calls.entry(piece.index).or_insert_with(|| ToolCall {
                            id: String::new(),
                            name: String::new(),
                            arguments: String::new(),
                        });
                        if let Some(id) = piece.id {
                            call.id = id;
                        }
                        if let Some(function) = piece.function {
                            if let Some(name) = function.name {
                                call.name.push_str(&name);
                            }
                            if let Some(arguments) = function.arguments {
                                call.arguments.push_str(&arguments);
                            }
                        }
                    }
                    if choice.finish_reason.is_some() {
                        answer.finish_reason = choice.finish_reason;
                    }
                }
            }
        }
        answer.tool_calls = calls.into_values().collect();
        Ok(answer)
    }

    /// Vectors for `inputs` from an embeddings model.
    pub async fn embed(
        &self,
        model: &LlmModelConfig,
        inputs: &[String],
    ) -> Result<Embeddings, LlmError> {
        let server = self.server(model)?;
        let url = endpoint(server, "/embeddings");
        let deadline = Instant::now() + self.inner.config.request_timeout;
        let wire = CreateEmbeddingRequest {
            model: model.name.clone(),
            input: EmbeddingInput::StringArray(inputs.to_vec()),
            ..Default::default()
        };
        let body = serde_json::to_value(&wire).unwrap_or(serde_json::Value::Null);
        let (response, _) = self
            .send(server, model, "/embeddings", &body, deadline)
            .await?;
        let bytes = self.read_body(response, &url, deadline).await?;
        let wire: CreateEmbeddingResponse =
            serde_json::from_slice(&bytes).map_err(|e| LlmError::Malformed {
                url: url.clone(),
                what: format!("not an embeddings answer ({e})"),
            })?;
        let mut data = wire.data;
        data.sort_by_key(|d| d.index);
        if data.len() != inputs.len() {
            return Err(LlmError::Malformed {
                url,
                what: format!("{} vectors for {} inputs", data.len(), inputs.len()),
            });
        }
        Ok(Embeddings {
            vectors: data.into_iter().map(|d| d.embedding).collect(),
            prompt_tokens: u64::from(wire.usage.prompt_tokens),
        })
    }

    /// Sends `body` until an attempt succeeds or the policy (see the module's doc) gives up. Returns the
    /// successful response (its headers read, its body not) and the attempts made.
    async fn send(
        &self,
        server: &Server,
        model: &LlmModelConfig,
        path: &str,
        body: &serde_json::Value,
        deadline: Instant,
    ) -> Result<(reqwest::Response, u32), LlmError> {
        let config = &self.inner.config;
        let url = endpoint(server, path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= config.max_attempts;
            let mut builder = self.inner.http.post(&url).json(body);
            if let Some(key) = &server.key {
                builder = builder.bearer_auth(&key.0);
            }
            let wait = config
                .read_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let outcome = tokio::time::timeout(wait, builder.send()).await;
            let retry_in = match outcome {
                Err(_) => {
                    return Err(LlmError::Timeout {
                        url,
                        what: "the answer's first byte",
                        millis: millis(wait),
                    })
                }
                Ok(Err(e)) if e.is_timeout() => {
                    return Err(LlmError::Timeout {
                        url,
                        what: "the connection",
                        millis: millis(config.connect_timeout),
                    })
                }
                Ok(Err(e)) => {
                    if last {
                        return Err(LlmError::Unreachable {
                            url,
                            cause: error_chain(&e),
                        });
                    }
                    backoff(attempt, config.max_retry_wait)
                }
                Ok(Ok(response)) => {
                    let status = response.status();
                    if status.is_success() {
                        return Ok((response, attempt));
                    }
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    let text = self
                        .read_body(response, &url, deadline)
                        .await
                        .unwrap_or_default();
                    let message = api_error(&text).unwrap_or_else(|| ApiError {
                        message: snippet(&text),
                        kind: None,
                    });
                    let code = status.as_u16();
                    if code == 429 {
                        let wait =
                            retry_after.unwrap_or_else(|| backoff(attempt, config.max_retry_wait));
                        if last || wait > config.max_retry_wait {
                            let detail = match retry_after {
                                Some(after) if after > config.max_retry_wait => format!(
                                    "it asks to wait {} s, longer than llm.max_retry_wait ({} s)",
                                    after.as_secs(),
                                    config.max_retry_wait.as_secs()
                                ),
                                _ => format!(
                                    "HTTP 429 on all {attempt} attempt(s): {}",
                                    message.message
                                ),
                            };
                            return Err(LlmError::RateLimited { url, detail });
                        }
                        wait
                    } else if status.is_server_error() {
                        if last {
                            return Err(LlmError::Server {
                                url,
                                status: code,
                                attempts: attempt,
                                message: message.message,
                            });
                        }
                        backoff(attempt, config.max_retry_wait)
                    } else {
                        return Err(classify(model, &url, code, &message, attempt));
                    }
                }
            };
            if Instant::now() + retry_in >= deadline {
                return Err(LlmError::Timeout {
                    url,
                    what: "llm.request_timeout, before the next retry",
                    millis: millis(config.request_timeout),
                });
            }
            tracing::debug!(%url, attempt, wait_ms = millis(retry_in), "retrying an LLM call");
            tokio::time::sleep(retry_in).await;
        }
    }

    /// Reads a whole body of at most [`MAX_BODY`] bytes, with the read timeout between chunks.
    async fn read_body(
        &self,
        response: reqwest::Response,
        url: &str,
        deadline: Instant,
    ) -> Result<Vec<u8>, LlmError> {
        let mut stream = response.bytes_stream();
        let mut body = Vec::new();
        loop {
            let wait = self
                .inner
                .config
                .read_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            match tokio::time::timeout(wait, stream.next()).await {
                Err(_) => {
                    return Err(LlmError::Timeout {
                        url: url.to_string(),
                        what: "the rest of the answer",
                        millis: millis(wait),
                    })
                }
                Ok(None) => return Ok(body),
                Ok(Some(Err(e))) => {
                    return Err(LlmError::Unreachable {
                        url: url.to_string(),
                        cause: format!("the answer broke off: {}", error_chain(&e)),
                    })
                }
                Ok(Some(Ok(bytes))) => {
                    if body.len() + bytes.len() > MAX_BODY {
                        return Err(LlmError::Malformed {
                            url: url.to_string(),
                            what: format!("an answer over {MAX_BODY} bytes"),
                        });
                    }
                    body.extend_from_slice(&bytes);
                }
            }
        }
    }
}

fn endpoint(server: &Server, path: &str) -> String {
    format!("{}{path}", server.base_url)
}

/// The error object of an OpenAI-style error body (`{"error": {"message", "type", "code"}}`; llama.cpp's server
/// writes `code` as a number, which async-openai's error type does not take).
struct ApiError {
    message: String,
    kind: Option<String>,
}

fn api_error(body: &[u8]) -> Option<ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    let message = match error {
        serde_json::Value::String(text) => text.clone(),
        _ => error.get("message")?.as_str()?.to_string(),
    };
    let kind = ["type", "code"]
        .iter()
        .filter_map(|k| error.get(*k).and_then(|v| v.as_str()))
        .map(str::to_string)
        .next();
    Some(ApiError { message, kind })
}

/// A refusal that is not worth retrying: a prompt over the context, or another 4xx.
fn classify(
    model: &LlmModelConfig,
    url: &str,
    status: u16,
    error: &ApiError,
    attempts: u32,
) -> LlmError {
    let lower = error.message.to_lowercase();
    let too_long = matches!(
        error.kind.as_deref(),
        Some("exceed_context_size_error" | "context_length_exceeded")
    ) || lower.contains("context length")
        || lower.contains("context size")
        || lower.contains("context window");
    if too_long {
        return LlmError::ContextTooLong {
            model: model.name.clone(),
            message: error.message.clone(),
        };
    }
    if status >= 500 {
        return LlmError::Server {
            url: url.to_string(),
            status,
            attempts,
            message: error.message.clone(),
        };
    }
    LlmError::Refused {
        url: url.to_string(),
        status,
        message: error.message.clone(),
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Some(Duration::from_secs_f64(seconds.min(86_400.0)));
        }
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The wait before attempt `attempt + 1`: full jitter over 250 ms × 2^(attempt-1), capped.
fn backoff(attempt: u32, cap: Duration) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16))
        .min(cap);
    let millis = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

/// The first 300 characters of a body, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no body)".to_string();
    }
    let cut: String = text.chars().take(300).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// An error with its causes, which reqwest keeps apart ("error sending request" … "Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let date = httpdate::fmt_http_date(later);
        let wait = parse_retry_after(&date).expect("an HTTP date");
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_under_the_cap() {
        for attempt in 1..20 {
            let cap = Duration::from_secs(2);
            let wait = backoff(attempt, cap);
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(cap);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "attempt {attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn llama_cpp_and_openai_context_errors_are_told_apart_from_other_refusals() {
        let model = LlmModelConfig {
            name: "m".to_string(),
            tags: vec![dreamos_runtime::config::ModelTag::Fast],
            context: 512,
            max_output: 64,
            base_url: String::new(),
            api_key_env: String::new(),
        };
        let llama = br#"{"error":{"code":400,"message":"request (3030 tokens) exceeds the available context size (512 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":3030,"n_ctx":512}}"#;
        let openai = br#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        let other = br#"{"error":{"message":"model not found","type":"invalid_request_error"}}"#;
        for body in [&llama[..], &openai[..]] {
            let error = api_error(body).expect("an error body");
            assert!(matches!(
                classify(&model, "u", 400, &error, 1),
                LlmError::ContextTooLong { .. }
            ));
        }
        let error = api_error(other).expect("an error body");
        assert!(matches!(
            classify(&model, "u", 404, &error, 1),
            LlmError::Refused { status: 404, .. }
        ));
    }

    #[test]
    fn the_key_is_not_in_the_bridges_debug_output() {
        let config = LlmConfig {
            api_key_env: "TEST_KEY".to_string(),
            base_url: "http://127.0.0.1:9/v1".to_string(),
            models: vec![LlmModelConfig {
                name: "m".to_string(),
                tags: vec![dreamos_runtime::config::ModelTag::Fast],
                context: 512,
                max_output: 64,
                base_url: String::new(),
                api_key_env: String::new(),
            }],
            ..dreamos_runtime::Config::defaults().llm
        };
        let bridge =
            Bridge::with_env(&config, |_| Some("sk-very-secret".to_string())).expect("bridge");
        let shown = format!("{bridge:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
        let missing = Bridge::with_env(&config, |_| None).expect_err("no key");
        assert_eq!(missing.kind(), "llm_missing_key");
        assert!(missing.to_string().contains("TEST_KEY"));
    }
}
