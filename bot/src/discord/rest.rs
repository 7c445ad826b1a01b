//! Our own REST calls to Discord: the posts the outbox and the log mirror make, honouring rate limits themselves.
//!
//! Why not serenity's `Http` for these: with `[discord] api_url` set, serenity's rate limiter must be off (it
//! ignores its proxy setting otherwise), and with it off serenity turns a 429 into an error that keeps neither the
//! body's `retry_after` nor the `Retry-After` and `X-RateLimit-*` headers. These posts must wait a 429 out, never
//! show it to anyone, and pace themselves by the headers; so they go through this small client, in production as
//! in tests, over the same base URL and token.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use serde_json::Value;

use super::Secret;

/// Retries of one post after a 429 or a server error before it is given up (and logged).
const MAX_TRIES: u32 = 8;

/// A failed post. `Rejected` will not succeed by trying again (an unknown channel, missing permissions).
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("Discord refused the post ({status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("Discord did not take the post after {tries} tries: {last}")]
    GaveUp { tries: u32, last: String },
}

/// A file attached to a post.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The client. Cheap to share behind an `Arc`.
pub struct Rest {
    client: reqwest::Client,
    /// `https://discord.com/api/v10`, or `[discord] api_url` + `/api/v10`.
    base: String,
    auth: String,
    /// Per route (a channel's messages), not before this instant: from the rate-limit headers and 429s.
    buckets: Mutex<HashMap<String, Instant>>,
    /// Not before this instant, for every route (a global 429).
    global: Mutex<Option<Instant>>,
}

impl Rest {
    pub fn new(api_url: &str, token: &Secret) -> anyhow::Result<Rest> {
        let base = if api_url.is_empty() {
            "https://discord.com".to_string()
        } else {
            api_url.trim_end_matches('/').to_string()
        };
        let client = reqwest::Client::builder()
            .user_agent(concat!(
                "DiscordBot (dreamos, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .timeout(Duration::from_secs(30))
            // The system proxy would see the bot's token; loopback tests must never go through one either.
            .no_proxy()
            .build()?;
        Ok(Rest {
            client,
            base: format!("{base}/api/v10"),
            auth: format!("Bot {}", token.expose()),
            buckets: Mutex::new(HashMap::new()),
            global: Mutex::new(None),
        })
    }

    /// Posts a message to a channel; returns Discord's message object. `body` is the JSON of Discord's create
    /// message call (content, nonce, enforce_nonce, allowed_mentions, ...); `files` go as multipart.
    pub async fn post_message(
        &self,
        channel: u64,
        body: &Value,
        files: &[Attachment],
    ) -> Result<Value, RestError> {
        let route = format!("/channels/{channel}/messages");
        self.send(&route, reqwest::Method::POST, body, files).await
    }

    /// Edits an interaction's original response (within its 15 minutes).
    pub async fn edit_original(
        &self,
        application: u64,
        token: &str,
        body: &Value,
    ) -> Result<Value, RestError> {
        let route = format!("/webhooks/{application}/{token}/messages/@original");
        self.send(&route, reqwest::Method::PATCH, body, &[]).await
    }

    async fn send(
        &self,
        route: &str,
        method: reqwest::Method,
        body: &Value,
        files: &[Attachment],
    ) -> Result<Value, RestError> {
        let mut last = String::new();
        for attempt in 0..MAX_TRIES {
            self.wait_turn(route).await;
            let url = format!("{}{route}", self.base);
            let request = self
                .client
                .request(method.clone(), &url)
                .header("Authorization", &self.auth);
            let request = if files.is_empty() {
                request.json(body)
            } else {
                let mut form = reqwest::multipart::Form::new();
                for (i, file) in files.iter().enumerate() {
                    let part = reqwest::multipart::Part::bytes(file.bytes.clone())
                        .file_name(file.name.clone())
                        .mime_str("text/plain")
                        .map_err(|e| RestError::Rejected {
                            status: 0,
                            message: e.to_string(),
                        })?;
                    form = form.part(format!("files[{i}]"), part);
                }
                let mut payload = body.clone();
                payload["attachments"] = files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| serde_json::json!({ "id": i, "filename": f.name }))
                    .collect();
                form = form.text("payload_json", payload.to_string());
                request.multipart(form)
            };
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => {
                    // The error's text names the URL, which holds an interaction token for edits: keep it out.
                    last = format!("connection failed: {}", without_url(&err));
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            self.note_limits(route, &headers);
            let text = response.text().await.unwrap_or_default();
            if status.is_success() {
                return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
            }
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status.as_u16() == 429 {
                let wait = retry_after(&json, &headers).unwrap_or_else(|| backoff(attempt));
                let until = Instant::now() + wait;
                if json["global"].as_bool() == Some(true) {
                    *self.global.lock() = Some(until);
                } else {
                    self.buckets.lock().insert(route.to_string(), until);
                }
                tracing::debug!(
                    wait_ms = wait.as_millis() as u64,
                    "rate limited; waiting it out"
                );
                last = format!("rate limited for {} ms", wait.as_millis());
                continue;
            }
            let message = json["message"]
                .as_str()
                .map_or_else(|| text.chars().take(200).collect(), str::to_string);
            if status.is_server_error() {
                last = format!("{status}: {message}");
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            return Err(RestError::Rejected {
                status: status.as_u16(),
                message,
            });
        }
        Err(RestError::GaveUp {
            tries: MAX_TRIES,
            last,
        })
    }

    /// Waits until the route (and every route, after a global limit) may be called again.
    async fn wait_turn(&self, route: &str) {
        loop {
            let until = {
                let global = *self.global.lock();
                let bucket = self.buckets.lock().get(route).copied();
                global.into_iter().chain(bucket).max()
            };
            match until {
                Some(until) if until > Instant::now() => {
                    tokio::time::sleep_until(until.into()).await
                }
                _ => return,
            }
        }
    }

    /// `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset-After: 1.5` means the route's next call waits 1.5 s.
    fn note_limits(&self, route: &str, headers: &reqwest::header::HeaderMap) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if number("x-ratelimit-remaining") == Some(0.0) {
            if let Some(after) = number("x-ratelimit-reset-after") {
                let until = Instant::now() + Duration::from_secs_f64(after.clamp(0.0, 3600.0));
                self.buckets.lock().insert(route.to_string(), until);
            }
        }
    }
}

/// A 429's wait: the body's `retry_after` (seconds, fractional), else the `Retry-After` header.
fn retry_after(body: &Value, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds = body["retry_after"].as_f64().or_else(|| {
        headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok())
    })?;
    Some(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << attempt.min(6)))
}

/// An error's text without its URL, which holds an interaction token for edits.
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "(url)");
    }
    text
}
