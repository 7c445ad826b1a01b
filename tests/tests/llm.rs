//! The LLM bridge against a scripted OpenAI-compatible server on 127.0.0.1 ([`FakeOpenAi`]): plain answers and
//! usage, streamed chunks, tool calls whole and streamed, 429 with `Retry-After`, 5xx, malformed answers, a hung
//! connection, an unreachable server and a prompt over the context; the token ledger and its budgets.

use std::time::{Duration, Instant};

use dreamos_agents::llm::{
    Bridge, Caller, ChatRequest, Ledger, LlmError, ToolCall, Usage, UsageFilter,
};
use dreamos_runtime::config::{LlmBudgets, LlmConfig, LlmModelConfig, ModelTag};
use dreamos_tests::fake_openai::{self, FakeOpenAi, Reply};
use serde_json::json;

fn model(name: &str) -> LlmModelConfig {
    LlmModelConfig {
        name: name.to_string(),
        tags: vec![ModelTag::Fast],
        context: 4096,
        max_output: 256,
        base_url: String::new(),
        api_key_env: String::new(),
    }
}

fn config(base_url: &str) -> LlmConfig {
    LlmConfig {
        base_url: base_url.to_string(),
        models: vec![model("fake-model")],
        read_timeout: Duration::from_secs(10),
        max_retry_wait: Duration::from_secs(5),
        ..dreamos_runtime::Config::defaults().llm
    }
}

fn bridge(config: &LlmConfig) -> Bridge {
    Bridge::with_env(config, |var| {
        (var == "FAKE_KEY").then(|| "sk-test-1234".to_string())
    })
    .expect("bridge")
}

fn question() -> ChatRequest {
    ChatRequest::default()
        .system("You answer briefly.")
        .user("What is Dream.OS?")
}

#[tokio::test]
async fn a_plain_answer_comes_back_with_the_servers_usage_and_the_request_is_well_formed() {
    let fake = FakeOpenAi::start().await;
    fake.script([Reply::Json {
        status: 200,
        headers: Vec::new(),
        body: fake_openai::answer("A swarm of agents.", 21, 5),
    }]);
    let config = LlmConfig {
        api_key_env: "FAKE_KEY".to_string(),
        ..config(&fake.base_url)
    };
    let bridge = bridge(&config);
    let model = bridge.models()[0].clone();
    let answer = bridge
        .chat(&model, &question().max_tokens(100))
        .await
        .expect("answer");
    assert_eq!(answer.content, "A swarm of agents.");
    assert_eq!(
        answer.usage,
        Some(Usage {
            prompt_tokens: 21,
            completion_tokens: 5
        })
    );
    assert_eq!(
        (answer.attempts, answer.served_by.as_str()),
        (1, "fake-model")
    );
    let sent = fake.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/chat/completions");
    assert_eq!(
        sent[0].authorization.as_deref(),
        Some("Bearer sk-test-1234")
    );
    let body = &sent[0].body;
    assert_eq!(body["model"], "fake-model");
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["content"], "What is Dream.OS?");
    assert!(body.get("stream").is_none_or(|s| s == false));
}

#[tokio::test]
async fn max_tokens_never_exceeds_the_models_max_output() {
    let fake = FakeOpenAi::start().await;
    let bridge = bridge(&config(&fake.base_url));
    let model = bridge.models()[0].clone();
    bridge
        .chat(&model, &question().max_tokens(100_000))
        .await
        .expect("answer");
    bridge.chat(&model, &question()).await.expect("answer");
    let sent = fake.received();
    assert_eq!(sent[0].body["max_tokens"], 256);
    assert_eq!(sent[1].body["max_tokens"], 256);
}

#[tokio::test]
async fn a_streamed_answer_arrives_piece_by_piece_with_usage_from_the_last_chunk() {
    let fake = FakeOpenAi::start().await;
    fake.script([Reply::Stream {
        events: vec![
            fake_openai::chunk(Some("A "), None),
            fake_openai::chunk(Some("swarm"), None),
            fake_openai::chunk(Some("."), None),
            fake_openai::chunk(None, Some("stop")),
            fake_openai::usage_chunk(30, 3),
        ],
        done: true,
        pause: Duration::from_millis(5),
    }]);
    let bridge = bridge(&config(&fake.base_url));
    let model = bridge.models()[0].clone();
    let mut pieces = Vec::new();
    let answer = bridge
        .chat_stream(&model, &question(), &mut |text| {
            pieces.push(text.to_string())
        })
        .await
        .expect("answer");
    assert_eq!(pieces, vec!["A ", "swarm", "."]);
    assert_eq!(answer.content, "A swarm.");
    assert_eq!(
        answer.usage,
        Some(Usage {
            prompt_tokens: 30,
            completion_tokens: 3
        })
    );
    let body = &fake.received()[0].body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn tool_calls_are_read_whole_and_from_streamed_pieces() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Reply::Json {
            status: 200,
            headers: Vec::new(),
            body: fake_openai::tool_calls(
                &[
                    ("call_1", "search_code", json!({"query": "Searcher"})),
                    ("call_2", "refs", json!({"symbol": "open"})),
                ],
                40,
                12,
            ),
        },
        Reply::Stream {
            events: vec![
                fake_openai::tool_chunk(0, Some("call_9"), Some("find_symbol"), ""),
                fake_openai::tool_chunk(0, None, None, "{\"name\":"),
                fake_openai::tool_chunk(0, None, None, "\"Bridge\"}"),
                fake_openai::chunk(None, Some("tool_calls")),
                fake_openai::usage_chunk(41, 9),
            ],
            done: true,
            pause: Duration::ZERO,
        },
    ]);
    let bridge = bridge(&config(&fake.base_url));
    let model = bridge.models()[0].clone();
    let request = question().tool(
        "search_code",
        "Search the code index",
        json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
    );
    let whole = bridge.chat(&model, &request).await.expect("answer");
    assert_eq!(
        whole.tool_calls,
        vec![
            ToolCall {
                id: "call_1".to_string(),
                name: "search_code".to_string(),
                arguments: r#"{"query":"Searcher"}"#.to_string()
            },
            ToolCall {
                id: "call_2".to_string(),
                name: "refs".to_string(),
                arguments: r#"{"symbol":"open"}"#.to_string()
            },
        ]
    );
    assert_eq!(
        fake.received()[0].body["tools"][0]["function"]["name"],
        "search_code"
    );
    let streamed = bridge
        .chat_stream(&model, &request, &mut |_| {})
        .await
        .expect("answer");
    assert_eq!(
        streamed.tool_calls,
        vec![ToolCall {
            id: "call_9".to_string(),
            name: "find_symbol".to_string(),
            arguments: r#"{"name":"Bridge"}"#.to_string()
        }]
    );
    assert_eq!(streamed.usage.map(|u| u.completion_tokens), Some(9));
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_its_retry_after_asks_for() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Reply::Json {
            status: 429,
            headers: vec![("retry-after".to_string(), "1".to_string())],
            body: json!({"error": {"message": "slow down", "type": "rate_limit_error"}}),
        },
        Reply::Json {
            status: 200,
            headers: Vec::new(),
            body: fake_openai::answer("now", 3, 1),
        },
    ]);
    let bridge = bridge(&config(&fake.base_url));
    let model = bridge.models()[0].clone();
    let answer = bridge.chat(&model, &question()).await.expect("answer");
    assert_eq!((answer.content.as_str(), answer.attempts), ("now", 2));
    let sent = fake.received();
    let waited = sent[1].at.duration_since(sent[0].at);
    assert!(
        waited >= Duration::from_millis(1000),
        "retried after {waited:?}, before the second Retry-After asked for"
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_allowed_fails_at_once_naming_the_setting() {
    let fake = FakeOpenAi::start().await;
    fake.script([Reply::Json {
        status: 429,
        headers: vec![("retry-after".to_string(), "120".to_string())],
        body: json!({"error": {"message": "quota", "type": "rate_limit_error"}}),
    }]);
    let bridge = bridge(&config(&fake.base_url));
    let model = bridge.models()[0].clone();
    let started = Instant::now();
    let err = bridge.chat(&model, &question()).await.expect_err("refused");
    assert_eq!(err.kind(), "rate_limited");
    assert!(err.to_string().contains("llm.max_retry_wait"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(fake.requests(), 1);
}

#[tokio::test]
async fn a_server_error_is_retried_with_backoff_and_reported_after_the_last_attempt() {
    let fake = FakeOpenAi::start().await;
    let error = || Reply::Json {
        status: 500,
        headers: Vec::new(),
        body: json!({"error": {"message": "the model crashed", "type": "server_error"}}),
    };
    fake.script([
        error(),
        Reply::Json {
            status: 200,
            headers: Vec::new(),
            body: fake_openai::answer("recovered", 3, 1),
        },
    ]);
    let bridge = bridge(&config(&fake.base_url));
    let model = bridge.models()[0].clone();
    let answer = bridge.chat(&model, &question()).await.expect("answer");
    assert_eq!((answer.content.as_str(), answer.attempts), ("recovered", 2));

    fake.script([error(), error(), error(), error()]);
    let err = bridge.chat(&model, &question()).await.expect_err("fails");
    match &err {
        LlmError::Server {
            status, attempts, ..
        } => assert_eq!((*status, *attempts), (500, 3)),
        other => panic!("expected a server error, got {other:?}"),
    }
    assert!(err.to_string().contains("the model crashed"), "{err}");
    assert_eq!(fake.requests(), 2 + 3, "max_attempts = 3");
}

#[tokio::test]
async fn malformed_answers_are_errors_that_say_so() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Reply::Raw {
            status: 200,
            body: "{\"choices\": [".to_string(),
        },
        Reply::Stream {
            events: vec![fake_openai::chunk(Some("cut "), None)],
            done: false,
            pause: Duration::ZERO,
        },
        Reply::Stream {
            events: vec![json!("not a chunk")],
            done: true,
            pause: Duration::ZERO,
        },
    ]);
    let bridge = bridge(&config(&fake.base_url));
    let model = bridge.models()[0].clone();
    let err = bridge
        .chat(&model, &question())
        .await
        .expect_err("malformed");
    assert_eq!(err.kind(), "llm_malformed");
    assert!(err.to_string().contains("not a chat completion"), "{err}");
    let err = bridge
        .chat_stream(&model, &question(), &mut |_| {})
        .await
        .expect_err("cut");
    assert!(err.to_string().contains("[DONE]"), "{err}");
    let err = bridge
        .chat_stream(&model, &question(), &mut |_| {})
        .await
        .expect_err("bad chunk");
    assert_eq!(err.kind(), "llm_malformed");
    assert_eq!(fake.requests(), 3, "malformed answers are not retried");
}

#[tokio::test]
async fn a_hung_server_times_out_after_the_read_timeout() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Reply::Hang,
        Reply::Stream {
            events: vec![fake_openai::chunk(Some("slow"), None); 2],
            done: true,
            pause: Duration::from_secs(30),
        },
    ]);
    let config = LlmConfig {
        read_timeout: Duration::from_millis(300),
        ..config(&fake.base_url)
    };
    let bridge = bridge(&config);
    let model = bridge.models()[0].clone();
    let started = Instant::now();
    let err = bridge.chat(&model, &question()).await.expect_err("hung");
    assert_eq!(err.kind(), "timeout");
    assert!(err.to_string().contains("300 ms"), "{err}");
    let err = bridge
        .chat_stream(&model, &question(), &mut |_| {})
        .await
        .expect_err("stalled stream");
    assert_eq!(err.kind(), "timeout");
    assert!(err.to_string().contains("next chunk"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(fake.requests(), 2, "a timeout is not retried");
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_after_the_retries() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = LlmConfig {
        max_retry_wait: Duration::from_millis(50),
        ..config(&format!("http://127.0.0.1:{port}/v1"))
    };
    let bridge = bridge(&config);
    let model = bridge.models()[0].clone();
    let err = bridge
        .chat(&model, &question())
        .await
        .expect_err("unreachable");
    assert_eq!(err.kind(), "llm_unreachable");
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("is it running?"),
        "{text}"
    );
}

#[tokio::test]
async fn a_prompt_over_the_context_is_context_too_long_and_not_retried() {
    let fake = FakeOpenAi::start().await;
    fake.script([Reply::Json {
        status: 400,
        headers: Vec::new(),
        body: json!({"error": {"code": 400, "message": "request (3030 tokens) exceeds the available context size (512 tokens), try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 3030, "n_ctx": 512}}),
    }]);
    let bridge = bridge(&config(&fake.base_url));
    let model = bridge.models()[0].clone();
    let err = bridge
        .chat(&model, &question())
        .await
        .expect_err("too long");
    assert_eq!(err.kind(), "context_too_long");
    assert!(err.to_string().contains("3030 tokens"), "{err}");
    assert_eq!(fake.requests(), 1);
}

#[tokio::test]
async fn embeddings_come_back_in_input_order() {
    let fake = FakeOpenAi::start().await;
    let bridge = bridge(&config(&fake.base_url));
    let model = bridge.models()[0].clone();
    let inputs = vec!["one".to_string(), "three".to_string()];
    let embeddings = bridge.embed(&model, &inputs).await.expect("embeddings");
    assert_eq!(embeddings.vectors, vec![vec![0.0, 3.0], vec![1.0, 5.0]]);
    assert_eq!(embeddings.prompt_tokens, 4);
    assert_eq!(fake.received()[0].path, "/v1/embeddings");
}

/// A store, a started log and a ledger with `budgets`, in `dir`.
struct Books {
    llm: dreamos_agents::llm::Llm,
    log: dreamos_runtime::log::MessageLog,
}

struct NoSink;

impl dreamos_runtime::log::CommitSink for NoSink {
    fn committed(&self, _: &dreamos_runtime::log::Committed) {}
}

fn books(dir: &std::path::Path, bridge: Bridge, budgets: LlmBudgets) -> Books {
    let store = dreamos_runtime::Store::open(dir).expect("store");
    let (log, _) = dreamos_runtime::log::MessageLog::open(
        &store,
        dreamos_runtime::log::LogOptions::defaults(),
    )
    .expect("log");
    log.start(std::sync::Arc::new(NoSink)).expect("start");
    let usage = dreamos_runtime::usage::UsageStore::open(&store).expect("usage");
    let ledger = Ledger::open(usage, log.clone(), budgets).expect("ledger");
    Books {
        llm: dreamos_agents::llm::Llm::new(bridge, ledger),
        log,
    }
}

fn ada() -> Caller {
    Caller {
        person: Some("console:ada".to_string()),
        agent: Some("agent-1".to_string()),
        task: None,
        frontend: Some("console".to_string()),
    }
}

#[tokio::test]
async fn usage_totals_are_the_sum_of_the_servers_usage_and_survive_a_restart() {
    let fake = FakeOpenAi::start().await;
    let answers = [(21, 5), (300, 40), (7, 1)];
    fake.script(answers.iter().map(|&(prompt, completion)| Reply::Json {
        status: 200,
        headers: Vec::new(),
        body: fake_openai::answer("ok", prompt, completion),
    }));
    let dir = tempfile::tempdir().expect("temp dir");
    let no_limits = LlmBudgets {
        person_daily: 0,
        agent_daily: 0,
        daily: 0,
    };
    {
        let books = books(
            dir.path(),
            bridge(&config(&fake.base_url)),
            no_limits.clone(),
        );
        let model = books.llm.bridge().models()[0].clone();
        for _ in answers {
            books
                .llm
                .chat(&ada(), &model, &question())
                .await
                .expect("answer");
        }
        let totals = books
            .llm
            .ledger()
            .totals(&UsageFilter::default())
            .expect("totals");
        assert_eq!(
            (totals.calls, totals.prompt_tokens, totals.completion_tokens),
            (3, 21 + 300 + 7, 5 + 40 + 1)
        );
        books.log.close().await;
    }
    let books = books(dir.path(), bridge(&config(&fake.base_url)), no_limits);
    let ledger = books.llm.ledger();
    let mine = ledger
        .totals(&UsageFilter {
            person: Some("console:ada".to_string()),
            ..UsageFilter::default()
        })
        .expect("totals");
    assert_eq!(
        (mine.calls, mine.prompt_tokens, mine.completion_tokens),
        (3, 328, 46)
    );
    assert_eq!(mine.by_model.get("fake-model"), Some(&(3, 328, 46)));
    let others = ledger
        .totals(&UsageFilter {
            person: Some("discord:bob".to_string()),
            ..UsageFilter::default()
        })
        .expect("totals");
    assert_eq!(others.calls, 0);
    books.log.close().await;
}

#[tokio::test]
async fn a_call_that_could_pass_a_budget_is_refused_before_it_is_sent() {
    let fake = FakeOpenAi::start().await;
    fake.script([Reply::Json {
        status: 200,
        headers: Vec::new(),
        body: fake_openai::answer("ok", 150, 50),
    }]);
    let dir = tempfile::tempdir().expect("temp dir");
    // The first call (about 30 prompt tokens, at most 256 answer tokens) fits; after its 200 tokens, a second
    // one could pass the person's 400.
    let books = books(
        dir.path(),
        bridge(&config(&fake.base_url)),
        LlmBudgets {
            person_daily: 400,
            agent_daily: 0,
            daily: 0,
        },
    );
    let model = books.llm.bridge().models()[0].clone();
    books
        .llm
        .chat(&ada(), &model, &question())
        .await
        .expect("within the budget");
    let err = books
        .llm
        .chat(&ada(), &model, &question())
        .await
        .expect_err("over the budget");
    assert_eq!(err.kind(), "budget_exceeded");
    let text = err.to_string();
    assert!(
        text.contains("llm.budgets.person_daily") && text.contains("200 tokens spent"),
        "{text}"
    );
    assert_eq!(fake.requests(), 1, "the refused call was never sent");
    // Someone else has a budget of their own.
    let bob = Caller {
        person: Some("discord:bob".to_string()),
        ..ada()
    };
    books
        .llm
        .chat(&bob, &model, &question())
        .await
        .expect("bob's budget is untouched");
    // And the agent budget counts every person's calls through that agent.
    books.log.close().await;
    drop(books);
    let books = books_with(dir.path(), &fake, 0, 300);
    let err = books
        .llm
        .chat(&bob, &model, &question())
        .await
        .expect_err("the agent's budget");
    assert!(err.to_string().contains("llm.budgets.agent_daily"), "{err}");
    books.log.close().await;
}

fn books_with(dir: &std::path::Path, fake: &FakeOpenAi, person: u64, agent: u64) -> Books {
    books(
        dir,
        bridge(&config(&fake.base_url)),
        LlmBudgets {
            person_daily: person,
            agent_daily: agent,
            daily: 0,
        },
    )
}

/// `/usage` through the binary's console: totals, why no model can be called, bad input; and the API key,
/// given only in the environment, is in no output, not even `dreamos config`.
#[test]
fn usage_in_the_console_and_the_key_never_printed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut console = dreamos_tests::Console::start(&data, &[], &[]);
    let usage = console.ok("/usage");
    assert_eq!(usage["calls"], 0);
    let why = usage["llm_unavailable"].as_str().unwrap_or_default();
    assert!(why.contains("[llm] base_url"), "{usage}");
    assert_eq!(console.refused("/usage --agent nobody").0, "unknown_agent");
    let (kind, message) = console.refused("/ask what is the capital of France?");
    assert_eq!(kind, "llm_not_configured");
    assert!(message.contains("[llm] base_url"), "{message}");
    assert_eq!(
        console.refused("/ask hello --model enormous").0,
        "invalid_argument"
    );
    assert_eq!(
        console.refused("/usage --since yesterday-ish").0,
        "invalid_argument"
    );
    console.finish();

    let secret = "sk-never-printed-7d1e";
    let env = [
        ("DREAMOS_LLM__BASE_URL", "http://127.0.0.1:9/v1"),
        ("DREAMOS_LLM__API_KEY_ENV", "DREAMOS_TEST_SECRET_KEY"),
        (
            "DREAMOS_LLM__MODELS",
            r#"[{name = "small", tags = ["fast"], context = 2048}]"#,
        ),
        ("DREAMOS_TEST_SECRET_KEY", secret),
    ];
    let mut console = dreamos_tests::Console::start(&data, &[], &env);
    let usage = console.ok("/usage --person console:console --since 1d");
    assert!(usage["llm_unavailable"].is_null(), "{usage}");
    assert_eq!(usage["person"], "console:console");
    let lines = console.finish();
    let printed: String = lines.iter().map(|l| format!("{l:?}")).collect();
    assert!(!printed.contains(secret), "the key was printed");
    let (status, stdout, stderr) = dreamos_tests::run_dreamos(&["config"], &env, "");
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("DREAMOS_TEST_SECRET_KEY"), "{stdout}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));

    // A key variable that is not set: the bridge is off and says which variable to set.
    let unset = [
        ("DREAMOS_LLM__BASE_URL", "http://127.0.0.1:9/v1"),
        ("DREAMOS_LLM__API_KEY_ENV", "DREAMOS_TEST_UNSET_KEY"),
        (
            "DREAMOS_LLM__MODELS",
            r#"[{name = "small", tags = ["fast"], context = 2048}]"#,
        ),
    ];
    let mut console = dreamos_tests::Console::start(&data, &[], &unset);
    let usage = console.ok("/usage");
    let why = usage["llm_unavailable"].as_str().unwrap_or_default();
    assert!(why.contains("DREAMOS_TEST_UNSET_KEY"), "{usage}");
    console.finish();
}

#[tokio::test]
async fn a_failing_model_falls_back_to_the_next_and_the_answer_says_which_answered_and_why() {
    let local = FakeOpenAi::start().await;
    let remote = FakeOpenAi::start().await;
    let broken = || Reply::Json {
        status: 503,
        headers: Vec::new(),
        body: json!({"error": {"message": "loading model", "type": "unavailable_error"}}),
    };
    local.script([broken(), broken(), broken()]);
    remote.script([Reply::Json {
        status: 200,
        headers: Vec::new(),
        body: fake_openai::answer("Paris.", 12, 2),
    }]);
    let config = LlmConfig {
        models: vec![
            LlmModelConfig {
                base_url: local.base_url.clone(),
                ..model("local-small")
            },
            LlmModelConfig {
                tags: vec![ModelTag::Balanced],
                base_url: remote.base_url.clone(),
                ..model("remote-big")
            },
        ],
        max_retry_wait: Duration::from_millis(20),
        ..config("")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let no_limits = LlmBudgets {
        person_daily: 0,
        agent_daily: 0,
        daily: 0,
    };
    let books = books(dir.path(), bridge(&config), no_limits);
    let question_text = "What is the capital of France?";
    let request = ChatRequest::default().user(question_text);
    let routed = books
        .llm
        .chat_routed(&ada(), question_text, None, &request, None)
        .await
        .expect("the fallback answers");
    assert_eq!(routed.tag, ModelTag::Fast);
    assert!(routed.reason.contains("short factual"), "{}", routed.reason);
    assert_eq!(routed.answer.model, "remote-big");
    assert_eq!(routed.answer.content, "Paris.");
    assert_eq!(routed.fell_back.len(), 1);
    assert_eq!(routed.fell_back[0].0, "local-small");
    assert!(
        routed.fell_back[0].1.contains("HTTP 503"),
        "{:?}",
        routed.fell_back
    );
    assert_eq!((local.requests(), remote.requests()), (3, 1));
    let totals = books
        .llm
        .ledger()
        .totals(&UsageFilter::default())
        .expect("totals");
    assert_eq!((totals.calls, totals.failed), (2, 1));
    assert_eq!(totals.by_model.get("remote-big"), Some(&(1, 12, 2)));

    // Naming the tag skips the classifier; when every model fails, each one's error is listed.
    local.script([broken(), broken(), broken()]);
    remote.script([broken(), broken(), broken()]);
    let err = books
        .llm
        .chat_routed(
            &ada(),
            question_text,
            Some(ModelTag::Balanced),
            &request,
            None,
        )
        .await
        .expect_err("all fail");
    assert_eq!(err.kind(), "llm_all_failed");
    let text = err.to_string();
    assert!(
        text.contains("remote-big: ") && text.contains("local-small: "),
        "{text}"
    );
    assert!(
        text.find("remote-big") < text.find("local-small"),
        "balanced first: {text}"
    );
    books.log.close().await;
}

#[tokio::test]
async fn a_budget_refusal_does_not_fall_back_to_another_model() {
    let fake = FakeOpenAi::start().await;
    let config = LlmConfig {
        models: vec![model("one"), model("two")],
        ..config(&fake.base_url)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let books = books(
        dir.path(),
        bridge(&config),
        LlmBudgets {
            person_daily: 0,
            agent_daily: 0,
            daily: 50,
        },
    );
    let err = books
        .llm
        .chat_routed(&ada(), "hello?", None, &question(), None)
        .await
        .expect_err("over the daily budget");
    assert_eq!(err.kind(), "budget_exceeded");
    assert!(err.to_string().contains("llm.budgets.daily"), "{err}");
    assert_eq!(fake.requests(), 0);
    books.log.close().await;
}

/// A fixture repository with a known layout, indexed for real.
async fn indexed_fixture(dir: &std::path::Path) -> dreamos_agents::code::Code {
    let repo = fake_openai::tinyrepo(dir);
    let config = dreamos_runtime::config::ScannerConfig {
        allowed_roots: vec![dir.to_path_buf()],
        ..dreamos_runtime::Config::defaults().scanner
    };
    let code = dreamos_agents::code::Code::open(&dir.join("index"), &config).expect("code index");
    code.index(repo.to_str().expect("utf-8"), Some("tinyrepo"))
        .await
        .expect("index");
    code
}

#[tokio::test]
async fn ask_runs_tools_over_several_steps_and_checks_every_citation() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Reply::Json {
            status: 200,
            headers: Vec::new(),
            body: fake_openai::tool_calls(
                &[("call_1", "find_symbol", json!({"name": "parse"}))],
                50,
                10,
            ),
        },
        Reply::Json {
            status: 200,
            headers: Vec::new(),
            body: fake_openai::tool_calls(
                &[
                    ("call_2", "refs", json!({"name": "parse"})),
                    ("call_3", "no_such_tool", json!({})),
                ],
                90,
                12,
            ),
        },
        Reply::Json {
            status: 200,
            headers: Vec::new(),
            body: fake_openai::answer(
                "parse is defined at tinyrepo:src/parser.rs:2 and called from tinyrepo:src/lib.rs:7; \
                 it is not at tinyrepo:src/parser.rs:40 nor at other:src/x.rs:1.",
                160,
                30,
            ),
        },
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let code = indexed_fixture(dir.path()).await;
    let no_limits = LlmBudgets {
        person_daily: 0,
        agent_daily: 0,
        daily: 0,
    };
    let books = books(
        &dir.path().join("data"),
        bridge(&config(&fake.base_url)),
        no_limits,
    );
    let tools = dreamos_agents::llm::ask::Tools {
        code: &code,
        memory: None,
        remember_as: None,
        agents: None,
    };
    let run = dreamos_agents::llm::ask::AskRun {
        question: "Where is `parse` defined and who calls it?",
        ..Default::default()
    };
    let answer = dreamos_agents::llm::ask::ask(&books.llm, &tools, &ada(), &run, &mut |_| {})
        .await
        .expect("an answer");
    assert_eq!(answer.steps, 3);
    let used: Vec<&str> = answer.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(used, ["find_symbol", "refs", "no_such_tool"]);
    assert!(answer.tools[2]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("there is no tool")));
    let shown = |cs: &[dreamos_agents::llm::ask::Citation]| -> Vec<String> {
        cs.iter().map(|c| c.to_string()).collect()
    };
    assert_eq!(
        shown(&answer.citations),
        ["tinyrepo:src/parser.rs:2", "tinyrepo:src/lib.rs:7"]
    );
    assert_eq!(
        shown(&answer.unverified),
        ["tinyrepo:src/parser.rs:40", "other:src/x.rs:1"]
    );
    assert_eq!((answer.prompt_tokens, answer.completion_tokens), (300, 52));
    assert_eq!(answer.tag, "code");

    // What the model was sent: the tools each step, and the tools' real results from the index.
    let sent = fake.received();
    assert_eq!(sent.len(), 3);
    assert!(sent[0].body["tools"]
        .as_array()
        .is_some_and(|t| t.len() == 5));
    let messages = sent[2].body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tool_results: Vec<String> = messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(tool_results.len(), 3);
    assert!(
        tool_results[0].contains("src/parser.rs") && tool_results[0].contains("\"line\":2"),
        "{}",
        tool_results[0]
    );
    assert!(
        tool_results[1].contains("src/lib.rs"),
        "{}",
        tool_results[1]
    );
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(
        messages[2]["tool_calls"][0]["function"]["name"],
        "find_symbol"
    );
    books.log.close().await;
}

#[tokio::test]
async fn ask_stops_after_its_step_limit_with_a_last_call_that_offers_no_tools() {
    let fake = FakeOpenAi::start().await;
    let again = || Reply::Json {
        status: 200,
        headers: Vec::new(),
        body: fake_openai::tool_calls(&[("c", "search_code", json!({"query": "load"}))], 10, 2),
    };
    let steps = dreamos_agents::llm::ask::MAX_STEPS;
    fake.script((0..steps - 1).map(|_| again()));
    fake.script([Reply::Json {
        status: 200,
        headers: Vec::new(),
        body: fake_openai::answer("I looked; load is in tinyrepo:src/lib.rs:6.", 10, 5),
    }]);
    let dir = tempfile::tempdir().expect("temp dir");
    let code = indexed_fixture(dir.path()).await;
    let books = books(
        &dir.path().join("data"),
        bridge(&config(&fake.base_url)),
        LlmBudgets {
            person_daily: 0,
            agent_daily: 0,
            daily: 0,
        },
    );
    let tools = dreamos_agents::llm::ask::Tools {
        code: &code,
        memory: None,
        remember_as: None,
        agents: None,
    };
    let run = dreamos_agents::llm::ask::AskRun {
        question: "find load",
        ..Default::default()
    };
    let answer = dreamos_agents::llm::ask::ask(&books.llm, &tools, &ada(), &run, &mut |_| {})
        .await
        .expect("an answer");
    assert_eq!(answer.steps, steps);
    assert_eq!(answer.tools.len(), steps - 1);
    let sent = fake.received();
    assert!(
        sent[steps - 1].body.get("tools").is_none(),
        "the last call offers no tools"
    );
    assert_eq!(answer.citations.len(), 1, "{answer:?}");
    books.log.close().await;
}
