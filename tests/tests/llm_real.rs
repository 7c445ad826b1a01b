//! The LLM bridge against a real OpenAI-compatible server: llama.cpp's HTTP server (the `xllamacpp` wheel)
//! serving SmolLM2-135M-Instruct, which `.ci/llm-server.sh` installs and starts on 127.0.0.1 (with embeddings on
//! and a 2,048-token context). `DREAMOS_TEST_LLM_URL` gives its base URL (`http://127.0.0.1:18080/v1`).
//!
//! Without the variable the tests say they did not run; under CI (`DREAMOS_CI=1`) they fail instead.

use std::time::Duration;

use dreamos_agents::llm::{Bridge, Caller, ChatRequest, Ledger, Llm, UsageFilter};
use dreamos_runtime::config::{LlmConfig, LlmModelConfig, ModelTag};

/// The server's base URL, or `None` (outside CI) when none was started.
fn server() -> Option<String> {
    match std::env::var("DREAMOS_TEST_LLM_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("DREAMOS_CI").is_none(),
                "the real LLM server is required under CI: run .ci/llm-server.sh and set DREAMOS_TEST_LLM_URL"
            );
            eprintln!(
                "NOT RUN: no real LLM server (start one with .ci/llm-server.sh and set DREAMOS_TEST_LLM_URL=http://127.0.0.1:18080/v1)"
            );
            None
        }
    }
}

fn config(url: &str) -> LlmConfig {
    LlmConfig {
        base_url: url.to_string(),
        models: vec![LlmModelConfig {
            name: "smollm2".to_string(),
            tags: vec![ModelTag::Fast, ModelTag::Embeddings],
            context: 2048,
            max_output: 256,
            base_url: String::new(),
            api_key_env: String::new(),
        }],
        read_timeout: Duration::from_secs(60),
        ..dreamos_runtime::Config::defaults().llm
    }
}

fn hello() -> ChatRequest {
    ChatRequest::default()
        .system("You are a helpful assistant. Answer in one short sentence.")
        .user("What is the capital of France?")
        .max_tokens(24)
        .temperature(0.0)
}

#[tokio::test]
async fn the_real_model_answers_and_the_usage_is_what_the_server_reports() {
    let Some(url) = server() else {
        return;
    };
    let bridge = Bridge::new(&config(&url)).expect("bridge");
    let model = bridge.models()[0].clone();
    let answer = bridge.chat(&model, &hello()).await.expect("answer");
    assert!(!answer.content.trim().is_empty(), "an empty answer");
    let usage = answer.usage.expect("the server reports usage");
    assert!(usage.prompt_tokens > 10, "{usage:?}");
    assert!(
        (1..=24).contains(&usage.completion_tokens),
        "{usage:?}: max_tokens was 24"
    );

    // The same request sent by hand: the server's own `usage` fields are what the bridge returned.
    let raw: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/chat/completions"))
        .json(&serde_json::json!({
            "model": "smollm2",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
                {"role": "user", "content": "What is the capital of France?"}
            ],
            "max_tokens": 24,
            "temperature": 0.0
        }))
        .send()
        .await
        .expect("raw request")
        .json()
        .await
        .expect("raw answer");
    assert_eq!(raw["usage"]["prompt_tokens"], usage.prompt_tokens);
    assert_eq!(raw["usage"]["completion_tokens"], usage.completion_tokens);
    assert_eq!(
        raw["choices"][0]["message"]["content"],
        answer.content.as_str()
    );
}

#[tokio::test]
async fn the_real_model_streams_its_answer_with_usage_at_the_end() {
    let Some(url) = server() else {
        return;
    };
    let bridge = Bridge::new(&config(&url)).expect("bridge");
    let model = bridge.models()[0].clone();
    let mut pieces = Vec::new();
    let answer = bridge
        .chat_stream(&model, &hello(), &mut |text| pieces.push(text.to_string()))
        .await
        .expect("answer");
    assert!(pieces.len() > 1, "one piece only: {pieces:?}");
    assert_eq!(pieces.concat(), answer.content);
    assert!(answer.finish_reason.is_some());
    let usage = answer.usage.expect("the last chunk carries usage");
    assert!((1..=24).contains(&usage.completion_tokens), "{usage:?}");
}

#[tokio::test]
async fn a_model_that_does_not_call_tools_just_answers_when_offered_some() {
    let Some(url) = server() else {
        return;
    };
    let bridge = Bridge::new(&config(&url)).expect("bridge");
    let model = bridge.models()[0].clone();
    let request = hello().tool(
        "search_code",
        "Search the code index for a word",
        serde_json::json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
    );
    let answer = bridge.chat(&model, &request).await.expect("answer");
    assert!(answer.tool_calls.is_empty(), "{:?}", answer.tool_calls);
    assert!(!answer.content.trim().is_empty());
}

#[tokio::test]
async fn a_prompt_over_the_real_models_context_is_context_too_long() {
    let Some(url) = server() else {
        return;
    };
    let bridge = Bridge::new(&config(&url)).expect("bridge");
    let model = bridge.models()[0].clone();
    let long = "the swarm remembers every message it accepted ".repeat(600);
    let err = bridge
        .chat(&model, &ChatRequest::default().user(long).max_tokens(8))
        .await
        .expect_err("too long");
    assert_eq!(err.kind(), "context_too_long", "{err}");
    assert!(err.to_string().contains("2048"), "{err}");
}

#[tokio::test]
async fn a_call_slower_than_the_read_timeout_times_out() {
    let Some(url) = server() else {
        return;
    };
    let config = LlmConfig {
        read_timeout: Duration::from_millis(20),
        ..config(&url)
    };
    let bridge = Bridge::new(&config).expect("bridge");
    let model = bridge.models()[0].clone();
    let request = ChatRequest::default()
        .user("Write a long story about a lighthouse keeper.")
        .max_tokens(64);
    let err = bridge.chat(&model, &request).await.expect_err("too slow");
    assert_eq!(err.kind(), "timeout", "{err}");
    assert!(err.to_string().contains("20 ms"), "{err}");
}

#[tokio::test]
async fn the_real_server_embeds_texts() {
    let Some(url) = server() else {
        return;
    };
    let bridge = Bridge::new(&config(&url)).expect("bridge");
    let model = bridge.models()[0].clone();
    let inputs = vec![
        "the message log".to_string(),
        "a lighthouse by the sea".to_string(),
    ];
    let embeddings = bridge.embed(&model, &inputs).await.expect("embeddings");
    assert_eq!(embeddings.vectors.len(), 2);
    assert_eq!(embeddings.vectors[0].len(), 576, "SmolLM2-135M's width");
    assert!(embeddings.prompt_tokens >= 4);
    for vector in &embeddings.vectors {
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 0.01, "not normalised: {norm}");
    }
    assert_ne!(embeddings.vectors[0], embeddings.vectors[1]);
}

struct NoSink;

impl dreamos_runtime::log::CommitSink for NoSink {
    fn committed(&self, _: &dreamos_runtime::log::Committed) {}
}

#[tokio::test]
async fn the_ledger_records_the_tokens_the_real_server_reported() {
    let Some(url) = server() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dreamos_runtime::Store::open(dir.path()).expect("store");
    let (log, _) = dreamos_runtime::log::MessageLog::open(
        &store,
        dreamos_runtime::log::LogOptions::defaults(),
    )
    .expect("log");
    log.start(std::sync::Arc::new(NoSink)).expect("start");
    let usage = dreamos_runtime::usage::UsageStore::open(&store).expect("usage");
    let config = config(&url);
    let ledger = Ledger::open(usage, log.clone(), config.budgets.clone()).expect("ledger");
    let llm = Llm::new(Bridge::new(&config).expect("bridge"), ledger);
    let model = llm.bridge().models()[0].clone();
    let caller = Caller {
        person: Some("console:ada".to_string()),
        ..Caller::default()
    };
    let mut reported = (0, 0);
    for _ in 0..2 {
        let answer = llm.chat(&caller, &model, &hello()).await.expect("answer");
        let usage = answer.usage.expect("usage");
        reported.0 += usage.prompt_tokens;
        reported.1 += usage.completion_tokens;
    }
    let mut on_text = |_: &str| {};
    let answer = llm
        .chat_stream(&caller, &model, &hello(), &mut on_text)
        .await
        .expect("answer");
    let usage = answer.usage.expect("usage");
    reported.0 += usage.prompt_tokens;
    reported.1 += usage.completion_tokens;
    let totals = llm
        .ledger()
        .totals(&UsageFilter::default())
        .expect("totals");
    assert_eq!(totals.calls, 3);
    assert_eq!((totals.prompt_tokens, totals.completion_tokens), reported);
    log.close().await;
}

/// The built binary's console in a fresh data directory, with the real model as `smollm2` carrying `tags` (a TOML
/// array), and `extra` settings.
fn console_on(
    url: &str,
    tags: &str,
    extra: &[(&str, &str)],
) -> (tempfile::TempDir, dreamos_tests::Console) {
    let dir = tempfile::tempdir().expect("temp dir");
    let models =
        format!(r#"[{{name = "smollm2", tags = {tags}, context = 2048, max_output = 64}}]"#);
    let mut env = vec![
        ("DREAMOS_LLM__BASE_URL", url),
        ("DREAMOS_LLM__MODELS", models.as_str()),
    ];
    env.extend_from_slice(extra);
    let console = dreamos_tests::Console::start(&dir.path().join("data"), &[], &env);
    (dir, console)
}

/// `/ask` end to end through the binary's console against the real model, which never calls a tool: the loop
/// ends with its answer in one step, and the ledger counts the call. The server is named `localhost`: the binary,
/// linked statically, finds it through glibc's name resolution (`/etc/hosts`).
#[test]
fn ask_through_the_console_answers_with_the_real_model() {
    let Some(url) = server() else {
        return;
    };
    let url = url.replacen("://127.0.0.1:", "://localhost:", 1);
    let (_dir, mut console) = console_on(&url, r#"["fast", "balanced"]"#, &[]);
    let answer = console.ok("/ask What is the capital of France?");
    let text = answer["text"].as_str().unwrap_or_default();
    assert!(!text.trim().is_empty(), "{answer}");
    assert_eq!(answer["model"], "smollm2");
    assert_eq!(answer["tag"], "fast");
    assert_eq!(answer["steps"], 1);
    assert!(
        answer["completion_tokens"]
            .as_u64()
            .is_some_and(|n| (1..=64).contains(&n)),
        "{answer}"
    );
    let usage = console.ok("/usage");
    assert_eq!(usage["calls"], 1);
    assert_eq!(usage["completion_tokens"], answer["completion_tokens"]);
    console.finish();
}

/// `/recall` with the real model's embeddings: the recall is fused (BM25 and similarity), every entry gets a
/// vector of the model's width on the first recall, and an entry sharing no word with the query can still be
/// found.
#[test]
fn recall_with_the_real_models_embeddings_is_fused() {
    let Some(url) = server() else {
        return;
    };
    let (_dir, mut console) = console_on(
        &url,
        r#"["fast", "embeddings"]"#,
        &[("DREAMOS_MEMORY__JOURNAL", "[]")],
    );
    console.ok("/remember The deploy failed because the disk was full.");
    console.ok("/remember Lunch is at noon on Fridays.");
    let found = console.ok("/recall storage");
    assert_eq!(found["ranked_by"], "bm25+embeddings", "{found}");
    // "storage" is in neither entry: whatever is found, similarity found it.
    let hits = found["hits"].as_array().cloned().unwrap_or_default();
    assert!(!hits.is_empty(), "{found}");
    let usage = console.ok("/usage");
    assert_eq!(usage["failed"], 0, "{usage}");
    assert!(usage["prompt_tokens"].as_u64().unwrap_or(0) >= 3, "{usage}");
    console.finish();
}
