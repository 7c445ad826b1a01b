//! LLM bridge benchmark: what the bridge adds to a call, beside a raw HTTP request in the same run.
//!
//! 1. Against the scripted fake server with zero think time (`FakeOpenAi`, 127.0.0.1): sequential calls, p50/p99
//!    per call, of a raw reqwest POST whose JSON body is parsed as a `serde_json::Value` (the baseline), of
//!    `Bridge::chat` (request built from async-openai's types, sent, answer parsed into them), and of `Llm::chat`
//!    (the bridge plus the ledger: the budget reservation and the record made durable with an fdatasync).
//!    Then `/ask`'s tool loop per step: `ask::ask` through 6 steps (5 that call a tool, a last one that answers),
//!    whose tool is unknown so that it costs nothing and the step is the loop and the bridge alone: without the
//!    recorded results, and with them (each step's answer recorded before the ledger's sync, tool results after).
//! 2. Against the real server when `DREAMOS_TEST_LLM_URL` is set (`.ci/llm-server.sh`): completion tokens per
//!    second of a streamed answer through `Bridge::chat_stream`, beside the same streamed request read raw.
//!
//! `cargo bench -p dreamos-tests --bench llm` (`-- --calls N`, `-- --runs N`).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use dreamos_agents::llm::{Bridge, Caller, ChatRequest, Ledger, Llm};
use dreamos_runtime::config::{LlmConfig, LlmModelConfig, ModelTag};
use dreamos_tests::fake_openai::FakeOpenAi;
use futures::StreamExt;

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn config(url: &str, name: &str) -> LlmConfig {
    LlmConfig {
        base_url: url.to_string(),
        models: vec![LlmModelConfig {
            name: name.to_string(),
            tags: vec![ModelTag::Fast],
            context: 2048,
            max_output: 256,
            base_url: String::new(),
            api_key_env: String::new(),
        }],
        read_timeout: Duration::from_secs(60),
        ..dreamos_runtime::Config::defaults().llm
    }
}

fn request() -> ChatRequest {
    ChatRequest::default()
        .system("You are a helpful assistant. Answer in one short sentence.")
        .user("What is the capital of France?")
}

fn raw_body(model: &str, max_tokens: u32, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"}
        ],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": stream,
        "stream_options": {"include_usage": stream}
    })
}

struct NoSink;

impl dreamos_runtime::log::CommitSink for NoSink {
    fn committed(&self, _: &dreamos_runtime::log::Committed) {}
}

fn report(what: &str, mut samples: Vec<Duration>, baseline: Option<Duration>) -> Duration {
    samples.sort();
    let p50 = percentile(&samples, 0.50);
    let p99 = percentile(&samples, 0.99);
    let extra = baseline.map_or(String::new(), |b| {
        format!(
            "  (+{:.3} ms over the raw request at p50)",
            ms(p50.saturating_sub(b))
        )
    });
    println!(
        "{what:<58} p50 {:>7.3} ms  p99 {:>7.3} ms{extra}",
        ms(p50),
        ms(p99)
    );
    p50
}

async fn against_the_fake(calls: usize) {
    let fake = FakeOpenAi::start().await;
    let config = config(&fake.base_url, "fake-model");
    let bridge = Bridge::new(&config).expect("bridge");
    let model = bridge.models()[0].clone();
    let http = reqwest::Client::new();
    let url = format!("{}/chat/completions", fake.base_url);
    let body = raw_body("fake-model", 64, false);
    let request = request();
    // Warm up connections and allocators.
    for _ in 0..50 {
        let _ = bridge.chat(&model, &request).await.expect("answer");
    }
    println!("== against the fake server, zero think time, {calls} sequential calls ==");
    let mut raw = Vec::with_capacity(calls);
    let mut ours = Vec::with_capacity(calls);
    // Interleaved, so that both see the same machine.
    for _ in 0..calls {
        let t = Instant::now();
        let answer: serde_json::Value = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .expect("raw request")
            .json()
            .await
            .expect("raw answer");
        assert!(answer["choices"][0]["message"]["content"].is_string());
        raw.push(t.elapsed());
        let t = Instant::now();
        let answer = bridge.chat(&model, &request).await.expect("answer");
        assert_eq!(answer.content, "ok");
        ours.push(t.elapsed());
    }
    let baseline = report("baseline  raw reqwest POST + JSON parse", raw, None);
    report("ours      Bridge::chat", ours, Some(baseline));

    let dir = tempfile::tempdir().expect("temp dir");
    let store = dreamos_runtime::Store::open(dir.path()).expect("store");
    let (log, _) = dreamos_runtime::log::MessageLog::open(
        &store,
        dreamos_runtime::log::LogOptions::defaults(),
    )
    .expect("log");
    log.start(Arc::new(NoSink)).expect("start");
    let ledger = Ledger::open(
        dreamos_runtime::usage::UsageStore::open(&store).expect("usage"),
        log.clone(),
        config.budgets.clone(),
    )
    .expect("ledger");
    let llm = Llm::new(bridge.clone(), ledger);
    let caller = Caller {
        person: Some("bench:bench".to_string()),
        ..Caller::default()
    };
    let mut booked = Vec::with_capacity(calls);
    for _ in 0..calls.min(1000) {
        let t = Instant::now();
        llm.chat(&caller, &model, &request).await.expect("answer");
        booked.push(t.elapsed());
    }
    report(
        "ours      Llm::chat (budget check + durable ledger record)",
        booked,
        Some(baseline),
    );

    // The tool loop, per step.
    let asks = (calls / 20).max(20);
    let code = dreamos_agents::code::Code::open(
        &dir.path().join("index"),
        &dreamos_runtime::Config::defaults().scanner,
    )
    .expect("code index");
    let tools = dreamos_agents::llm::ask::Tools {
        code: &code,
        memory: None,
        remember_as: None,
        agents: None,
    };
    let recording = llm
        .clone()
        .recording(dreamos_runtime::calls::CallStore::open(&store).expect("calls"));
    let steps = dreamos_agents::llm::ask::MAX_STEPS;
    for (what, llm, record) in [
        ("ours      ask step (loop + bridge + ledger)", &llm, false),
        (
            "ours      ask step, recorded (never pay twice)",
            &recording,
            true,
        ),
    ] {
        let mut per_step = Vec::with_capacity(asks);
        for i in 0..asks {
            script_tool_loop(&fake, steps);
            let scope = format!("task:{i}");
            let run = dreamos_agents::llm::ask::AskRun {
                question: "where is parse?",
                scope: record.then_some(scope.as_str()),
                ..Default::default()
            };
            let t = Instant::now();
            let answer = dreamos_agents::llm::ask::ask(llm, &tools, &caller, &run, &mut |_| {})
                .await
                .expect("an answer");
            assert_eq!(answer.steps, steps);
            per_step.push(t.elapsed() / steps as u32);
        }
        report(what, per_step, Some(baseline));
    }
    log.close().await;
}

/// Scripts one `/ask` of `steps` steps: tool calls, then an answer.
fn script_tool_loop(fake: &FakeOpenAi, steps: usize) {
    use dreamos_tests::fake_openai::{self, Reply};
    let reply = |body| Reply::Json {
        status: 200,
        headers: Vec::new(),
        body,
    };
    let mut replies: Vec<Reply> = (0..steps - 1)
        .map(|i| {
            let id = format!("call_{i}");
            reply(fake_openai::tool_calls(
                &[(id.as_str(), "no_such_tool", serde_json::json!({}))],
                40,
                5,
            ))
        })
        .collect();
    replies.push(reply(fake_openai::answer("ok", 60, 2)));
    fake.script(replies);
}

async fn against_the_real_server(url: &str, runs: usize) {
    let config = config(url, "smollm2");
    let bridge = Bridge::new(&config).expect("bridge");
    let model = bridge.models()[0].clone();
    let http = reqwest::Client::new();
    let request = request().max_tokens(128).temperature(0.0);
    println!(
        "== against the real server ({url}), a streamed 128-token answer, {runs} runs each =="
    );
    let mut raw_rates = Vec::new();
    let mut our_rates = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let response = http
            .post(format!("{url}/chat/completions"))
            .json(&raw_body("smollm2", 128, true))
            .send()
            .await
            .expect("raw request");
        let mut stream = response.bytes_stream();
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        }
        let elapsed = t.elapsed();
        let tokens = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["usage"]["completion_tokens"].as_u64())
            .next_back()
            .unwrap_or(0);
        raw_rates.push(tokens as f64 / elapsed.as_secs_f64());

        let t = Instant::now();
        let answer = bridge
            .chat_stream(&model, &request, &mut |_| {})
            .await
            .expect("answer");
        let tokens = answer.usage.map_or(0, |u| u.completion_tokens);
        our_rates.push(tokens as f64 / t.elapsed().as_secs_f64());
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (raw, ours) = (median(raw_rates), median(our_rates));
    println!(
        "baseline  raw streamed request                             {raw:>7.1} tokens/s (median)"
    );
    println!(
        "ours      Bridge::chat_stream                               {ours:>7.1} tokens/s (median, {:.0}% of raw)",
        100.0 * ours / raw
    );
}

fn main() {
    let calls: usize = arg("--calls", 2000);
    let runs: usize = arg("--runs", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("dreamos LLM bridge benchmark (2 cores)");
        against_the_fake(calls).await;
        match std::env::var("DREAMOS_TEST_LLM_URL") {
            Ok(url) if !url.is_empty() => against_the_real_server(&url, runs).await,
            _ => println!(
                "NOT RUN: the real-server part needs DREAMOS_TEST_LLM_URL (start .ci/llm-server.sh)"
            ),
        }
    });
}
