//! The LLM bridge: chat completions and embeddings from any OpenAI-compatible server (llama.cpp's server, ollama,
//! vLLM, OpenAI), configured in `[llm]`.
//!
//! - [`bridge`]: [`Bridge`] sends requests itself (reqwest) with async-openai's wire types, so that it sees status
//!   codes and `Retry-After`: retries honour a 429's `Retry-After` and back off with jitter on 5xx and lost
//!   connections, within `llm.max_attempts` and `llm.request_timeout`; streaming reads server-sent events with a
//!   deadline between chunks.
//! - [`sse`]: the server-sent-events line decoder.
//! - [`ask`]: `/ask`'s tool-using loop over the code index and the memory, with checked citations.
//! - [`skill`]: the `ask` skill, which runs that loop as a task, recorded step by step.
//! - [`pool`]: which model answers (a classifier picks a tag) and which one next when it fails.
//! - [`ledger`]: the token ledger and budgets; [`Llm`] puts the two together: every call is reserved against the
//!   budgets before it is sent and recorded durably when it ends.
//!
//! The API key is read from the environment variable the configuration names, once, when the bridge is built; it
//! is sent as a bearer token and appears in no error, log line or `Debug` output.

pub mod ask;
pub mod bridge;
pub mod ledger;
pub mod pool;
pub mod skill;
pub mod sse;

use std::time::{Duration, Instant};

pub use bridge::{Answer, Bridge, ChatRequest, Embeddings, ToolCall, Usage};
use dreamos_runtime::config::ModelTag;
use dreamos_runtime::{
    calls::{CallKey, CallStore},
    config::LlmModelConfig,
    message::Millis,
    usage::UsageRecord,
};
pub use ledger::{Caller, Ledger, Totals, UsageFilter};
pub use pool::{classify, Classified};

/// An answer with how it was routed: the tag and why, and the models that failed before the one that answered.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Routed {
    pub answer: Answer,
    pub tag: ModelTag,
    pub reason: String,
    /// `(model, error)` of each model tried before, in order.
    pub fell_back: Vec<(String, String)>,
    /// The answer is the one recorded before a crash (see [`Llm::chat_recorded`]); nothing was sent this time.
    #[serde(default)]
    pub reused: bool,
}

/// What [`Llm::call`] records with a successful answer.
struct Pending<'a> {
    calls: &'a CallStore,
    key: &'a CallKey,
    tag: ModelTag,
    reason: &'a str,
    fell_back: &'a [(String, String)],
}

/// The bridge behind the ledger: what agents and commands call. Cheap to clone.
#[derive(Clone)]
pub struct Llm {
    bridge: Bridge,
    ledger: Ledger,
    calls: Option<CallStore>,
}

impl Llm {
    pub fn new(bridge: Bridge, ledger: Ledger) -> Llm {
        Llm {
            bridge,
            ledger,
            calls: None,
        }
    }

    /// Keeps answers asked for with a key in `calls` (see [`Llm::chat_recorded`]).
    pub fn recording(mut self, calls: CallStore) -> Llm {
        self.calls = Some(calls);
        self
    }

    /// Where answers are recorded, when they are.
    pub fn calls(&self) -> Option<&CallStore> {
        self.calls.as_ref()
    }

    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// [`Bridge::chat`] for `caller`, within the budgets, recorded in the ledger.
    pub async fn chat(
        &self,
        caller: &Caller,
        model: &LlmModelConfig,
        request: &ChatRequest,
    ) -> crate::Result<Answer> {
        self.call(caller, model, request, None, None).await
    }

    /// [`Bridge::chat_stream`] for `caller`, within the budgets, recorded in the ledger.
    pub async fn chat_stream(
        &self,
        caller: &Caller,
        model: &LlmModelConfig,
        request: &ChatRequest,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> crate::Result<Answer> {
        self.call(caller, model, request, Some(on_text), None).await
    }

    /// [`Bridge::embed`] for `caller`, within the budgets, recorded in the ledger.
    pub async fn embed(
        &self,
        caller: &Caller,
        model: &LlmModelConfig,
        inputs: &[String],
    ) -> crate::Result<Embeddings> {
        let bytes: usize = inputs.iter().map(String::len).sum();
        let reservation = self
            .ledger
            .reserve(caller, ledger::estimate_prompt_tokens(bytes, inputs.len()))?;
        let started = Instant::now();
        let result = self.bridge.embed(model, inputs).await;
        let record = usage_record(
            caller,
            model,
            Usage {
                prompt_tokens: result.as_ref().map_or(0, |e| e.prompt_tokens),
                completion_tokens: 0,
            },
            started,
            result.as_ref().map(|_| 1),
        );
        self.ledger.record(reservation, record).await?;
        Ok(result?)
    }

    /// Asks the model the pool picks for `question` (or for `tag`, when a person named one), falling back to the
    /// next candidate when one fails, except for a budget refusal (which stops at once) or a streamed answer that
    /// already showed text.
    pub async fn chat_routed(
        &self,
        caller: &Caller,
        question: &str,
        tag: Option<ModelTag>,
        request: &ChatRequest,
        on_text: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> crate::Result<Routed> {
        self.chat_recorded(caller, None, question, tag, request, on_text)
            .await
    }

    /// [`Llm::chat_routed`], never paying twice for the answer under `key`: when one is recorded there it is
    /// returned (`reused`) and nothing is sent; otherwise the answer is recorded under `key` before the ledger's
    /// sync, so it is on stable storage with its usage before the caller acts on it. Without a call store (or a
    /// key) this is `chat_routed`.
    pub async fn chat_recorded(
        &self,
        caller: &Caller,
        key: Option<&CallKey>,
        question: &str,
        tag: Option<ModelTag>,
        request: &ChatRequest,
        mut on_text: Option<&mut (dyn FnMut(&str) + Send)>,
    ) -> crate::Result<Routed> {
        let recording = self.calls.as_ref().zip(key);
        if let Some((calls, key)) = recording {
            if let Some(recorded) = calls.get(key)? {
                match serde_json::from_str::<Routed>(&recorded.json) {
                    Ok(mut routed) => {
                        routed.reused = true;
                        if let Some(on_text) = on_text.as_mut() {
                            on_text(&routed.answer.content);
                        }
                        return Ok(routed);
                    }
                    // Written by another version: asked again (and recorded anew).
                    Err(e) => {
                        tracing::warn!(scope = %key.scope, step = key.step, error = %e, "a recorded answer does not read; asking again")
                    }
                }
            }
        }
        let (tag, reason) = match tag {
            Some(tag) => (tag, format!("--model {} was asked for", tag.as_str())),
            None => {
                let classified = classify(question);
                (classified.tag, classified.reason)
            }
        };
        let candidates = pool::candidates(self.bridge.models(), tag);
        if candidates.is_empty() {
            return Err(LlmError::NoChatModel.into());
        }
        let mut fell_back = Vec::new();
        for model in candidates {
            let mut shown = false;
            let pending = recording.map(|(calls, key)| Pending {
                calls,
                key,
                tag,
                reason: &reason,
                fell_back: &fell_back,
            });
            let result = match on_text.as_mut() {
                Some(on_text) => {
                    let mut forward = |text: &str| {
                        shown = true;
                        on_text(text);
                    };
                    self.call(caller, model, request, Some(&mut forward), pending)
                        .await
                }
                None => self.call(caller, model, request, None, pending).await,
            };
            match result {
                Ok(answer) => {
                    return Ok(Routed {
                        answer,
                        tag,
                        reason,
                        fell_back,
                        reused: false,
                    })
                }
                Err(crate::Error::Llm(e)) if !matches!(e, LlmError::Budget(_)) && !shown => {
                    tracing::warn!(model = %model.name, error = %e, "a model failed; trying the next");
                    fell_back.push((model.name.clone(), e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        let tried = fell_back
            .iter()
            .map(|(model, error)| format!("{model}: {error}"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(LlmError::AllFailed(tried).into())
    }

    async fn call(
        &self,
        caller: &Caller,
        model: &LlmModelConfig,
        request: &ChatRequest,
        on_text: Option<&mut (dyn FnMut(&str) + Send)>,
        pending: Option<Pending<'_>>,
    ) -> crate::Result<Answer> {
        let prompt_bytes = serde_json::to_string(&request.messages).map_or(0, |t| t.len())
            + serde_json::to_string(&request.tools).map_or(0, |t| t.len());
        let max_tokens = u64::from(
            request
                .max_tokens
                .unwrap_or(model.max_output)
                .min(model.max_output),
        );
        let most =
            ledger::estimate_prompt_tokens(prompt_bytes, request.messages.len()) + max_tokens;
        let reservation = self.ledger.reserve(caller, most)?;
        let started = Instant::now();
        let result = match on_text {
            Some(on_text) => self.bridge.chat_stream(model, request, on_text).await,
            None => self.bridge.chat(model, request).await,
        };
        let usage = result
            .as_ref()
            .ok()
            .and_then(|a| a.usage)
            .unwrap_or_default();
        let record = usage_record(
            caller,
            model,
            usage,
            started,
            result.as_ref().map(|a| a.attempts),
        );
        if let (Ok(answer), Some(p)) = (&result, pending) {
            let routed = Routed {
                answer: answer.clone(),
                tag: p.tag,
                reason: p.reason.to_string(),
                fell_back: p.fell_back.to_vec(),
                reused: false,
            };
            let json = serde_json::to_string(&routed)
                .map_err(|e| crate::Error::Invalid(format!("recording an answer: {e}")))?;
            p.calls.put(p.key, "model", json)?;
        }
        // Its sync makes the recorded answer durable too.
        self.ledger.record(reservation, record).await?;
        Ok(result?)
    }
}

/// Everything a call to a model can fail with. [`LlmError::kind`] is the stable name frontends show.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// `[llm]` has no server.
    #[error("no LLM is configured: set [llm] base_url (for example http://127.0.0.1:8080/v1 for llama.cpp's server) and add an [[llm.models]] entry; see README.md")]
    NotConfigured,

    /// The configuration names a key variable that is not set.
    #[error("the environment variable {var} (llm api_key_env) is not set; export it with the API key, or empty api_key_env for a server that needs none")]
    MissingKey { var: String },

    /// The server could not be reached at all.
    #[error("cannot reach the LLM server at {url}: {cause}; is it running?")]
    Unreachable { url: String, cause: String },

    /// No answer (or no next chunk) in time.
    #[error("the LLM server at {url} did not answer within {millis} ms ({what})")]
    Timeout {
        url: String,
        what: &'static str,
        millis: u64,
    },

    /// The prompt does not fit the model's context.
    #[error("the prompt is too long for model `{model}`: {message}; ask something shorter or configure a model with a larger context")]
    ContextTooLong { model: String, message: String },

    /// Rate limited, and waiting as long as the server asks is not allowed or did not help.
    #[error("the LLM server at {url} is rate limiting ({detail}); try again later")]
    RateLimited { url: String, detail: String },

    /// The server failed (5xx) on every attempt.
    #[error(
        "the LLM server at {url} failed with HTTP {status} after {attempts} attempt(s): {message}"
    )]
    Server {
        url: String,
        status: u16,
        attempts: u32,
        message: String,
    },

    /// The server refused the request (4xx other than 429).
    #[error("the LLM server at {url} refused the request with HTTP {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },

    /// The server answered something that is not an OpenAI-compatible answer.
    #[error("the LLM server at {url} sent a malformed answer: {what}")]
    Malformed { url: String, what: String },

    /// A token budget would be exceeded; nothing was sent.
    #[error("{0}")]
    Budget(String),

    /// Every candidate model failed; each one's error is listed.
    #[error("no model could answer: {0}")]
    AllFailed(String),

    /// No configured model answers questions (only embeddings models are configured).
    #[error("no configured model answers questions: add an [[llm.models]] entry tagged fast, balanced, heavy or code")]
    NoChatModel,
}

impl LlmError {
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::NotConfigured => "llm_not_configured",
            LlmError::MissingKey { .. } => "llm_missing_key",
            LlmError::Unreachable { .. } => "llm_unreachable",
            LlmError::Timeout { .. } => "timeout",
            LlmError::ContextTooLong { .. } => "context_too_long",
            LlmError::RateLimited { .. } => "rate_limited",
            LlmError::Server { .. } => "llm_server_error",
            LlmError::Refused { .. } => "llm_refused",
            LlmError::Malformed { .. } => "llm_malformed",
            LlmError::Budget(_) => "budget_exceeded",
            LlmError::AllFailed(_) => "llm_all_failed",
            LlmError::NoChatModel => "llm_not_configured",
        }
    }
}

/// The ledger's record of one call that started at `started` and ended with `attempts` (or an error).
fn usage_record(
    caller: &Caller,
    model: &LlmModelConfig,
    usage: Usage,
    started: Instant,
    attempts: Result<u32, &LlmError>,
) -> UsageRecord {
    UsageRecord {
        at: Millis::now(),
        model: model.name.clone(),
        person: caller.person.clone(),
        agent: caller.agent.clone(),
        task: caller.task.clone(),
        frontend: caller.frontend.clone(),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        duration_ms: millis(started.elapsed()),
        outcome: match attempts {
            Ok(_) => "ok".to_string(),
            Err(e) => e.kind().to_string(),
        },
        attempts: attempts.unwrap_or(0),
    }
}

/// Milliseconds of a duration, for messages.
fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
