//! `/ask` as a task, through the built binary against the scripted fake OpenAI-compatible server.
//!
//! - Crash: the process is killed with SIGKILL while the model is thinking about the third step; after the
//!   restart the task resumes by itself, the two steps whose answers were recorded are not asked again (the fake
//!   counts every request), the tools they asked for are not run again, and the third step is sent with exactly
//!   the conversation it was sent with before the kill.
//! - Conversation, memory and journal: a second question in the same console session carries the first turn; a
//!   new console session does not; the `remember` tool writes an entry linked to the task; the exchange is in
//!   the journal.

use std::time::{Duration, Instant};

use dreamos_tests::{
    fake_openai::{self, FakeOpenAi, Reply},
    Console,
};
use serde_json::{json, Value};

fn env(fake: &FakeOpenAi, roots: &str) -> Vec<(String, String)> {
    vec![
        ("DREAMOS_LLM__BASE_URL".into(), fake.base_url.clone()),
        (
            "DREAMOS_LLM__MODELS".into(),
            r#"[{name = "small", tags = ["fast", "balanced", "code"], context = 4096}]"#.into(),
        ),
        ("DREAMOS_LLM__READ_TIMEOUT".into(), "60s".into()),
        ("DREAMOS_LLM__REQUEST_TIMEOUT".into(), "120s".into()),
        ("DREAMOS_SCANNER__ALLOWED_ROOTS".into(), roots.into()),
    ]
}

/// A temporary directory with `work/` (the allowed root) and the path of its data directory, and the
/// environment pointing at `fake`.
struct Setup {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    data: std::path::PathBuf,
}

fn setup(fake: &FakeOpenAi) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("work")).expect("work");
    let roots = format!("[\"{}\"]", dir.path().join("work").display());
    let env = env(fake, &roots);
    let data = dir.path().join("data");
    Setup { dir, env, data }
}

fn start(data: &std::path::Path, env: &[(String, String)]) -> Console {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Console::start(data, &[], &env)
}

/// Polls `cond` every 20 ms until it holds or `within` passes.
fn wait_for(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills `console` once the model has received `requests` requests (the script makes the last of them hang, so the
/// process dies mid-step), then starts a new console on the same data directory.
fn restart_at_request(
    console: Console,
    fake: &FakeOpenAi,
    requests: usize,
    setup: (&std::path::Path, &[(String, String)]),
) -> Console {
    wait_for(
        &format!("request {requests} to the model"),
        Duration::from_secs(60),
        || fake.requests() >= requests,
    );
    console.kill();
    start(setup.0, setup.1)
}

/// The ask task, once the restarted console shows it done (within 60 s).
fn ask_done(console: &mut Console) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = console.ok("/task list");
        let ask = list["tasks"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["skill"] == "ask").cloned());
        if let Some(task) = ask.filter(|t| t["status"] == "done") {
            return task;
        }
        assert!(
            Instant::now() < deadline,
            "the ask task did not finish after the restart: {list}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The messages of a request, as roles.
fn roles(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["role"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_task_killed_between_steps_resumes_without_asking_recorded_steps_again() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Reply::ok(fake_openai::tool_calls(
            &[("call_1", "find_symbol", json!({"name": "parse"}))],
            50,
            10,
        )),
        Reply::ok(fake_openai::tool_calls(
            &[(
                "call_2",
                "outline",
                json!({"repo": "tinyrepo", "path": "src/parser.rs"}),
            )],
            90,
            12,
        )),
        // The third step never answers: the process is killed while it waits.
        Reply::Hang,
        Reply::ok(fake_openai::answer(
            "`parse` is defined at tinyrepo:src/parser.rs:2.",
            120,
            14,
        )),
    ]);
    let Setup { dir, env, data } = setup(&fake);
    let repo = fake_openai::tinyrepo(&dir.path().join("work"));

    let mut console = start(&data, &env);
    console.ok(&format!("/index {} --name tinyrepo --wait", repo.display()));
    console.send("/ask Where is parse defined?");
    // The first two answers were recorded before the third request was sent.
    let mut console = restart_at_request(console, &fake, 3, (&data, &env));
    let task = ask_done(&mut console);
    let shown = console.ok(&format!("/task show {}", task["id"]));
    let answer = &shown["task"]["result"];
    assert_eq!(answer["steps"], 3, "{shown}");
    assert_eq!(answer["reused_steps"], 2, "{shown}");
    assert_eq!(
        answer["citations"],
        json!([{"repo": "tinyrepo", "path": "src/parser.rs", "line": 2}]),
        "{shown}"
    );

    let received = fake.received();
    assert_eq!(
        received.len(),
        4,
        "steps 1 and 2 once, step 3 before and after the kill"
    );
    let steps: Vec<usize> = received.iter().map(|r| roles(&r.body).len()).collect();
    // system + user; then + assistant + tool for each step before.
    assert_eq!(steps, [2, 4, 6, 6], "{steps:?}");
    assert_eq!(
        received[2].body["messages"], received[3].body["messages"],
        "the resumed step is sent with the same conversation as before the kill"
    );
    // The tools' results replayed from the record are the ones the model saw before.
    let tool_result = |i: usize| received[i].body["messages"][3]["content"].clone();
    assert_eq!(tool_result(1), tool_result(3));

    // The ledger holds the three calls that were answered; the one cut by the kill cost nothing recorded.
    let usage = console.ok("/usage");
    assert_eq!(usage["calls"], 3, "{usage}");
    assert_eq!(usage["prompt_tokens"], 50 + 90 + 120, "{usage}");
    console.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_carries_the_conversation_remembers_and_journals_the_exchange() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Reply::ok(fake_openai::answer("Paris.", 20, 2)),
        Reply::ok(fake_openai::tool_calls(
            &[(
                "call_1",
                "remember",
                json!({"text": "The team asked about capitals.", "kind": "note"}),
            )],
            40,
            8,
        )),
        Reply::ok(fake_openai::answer("About two million people.", 60, 5)),
        Reply::ok(fake_openai::answer("Hello.", 10, 2)),
    ]);
    let Setup {
        dir: _dir,
        env,
        data,
    } = setup(&fake);

    let mut console = start(&data, &env);
    let first = console.ok("/ask What is the capital of France?");
    assert_eq!(first["text"], "Paris.");
    assert_eq!(first["history_turns"], 0);
    let second = console.ok("/ask How many people live there?");
    assert_eq!(second["text"], "About two million people.");
    assert_eq!(second["history_turns"], 1, "{second}");
    assert_eq!(second["tools"][0]["name"], "remember");
    assert!(second["tools"][0]["error"].is_null(), "{second}");

    let received = fake.received();
    let sent = &received[1].body["messages"];
    assert_eq!(
        roles(&received[1].body),
        ["system", "user", "assistant", "user"]
    );
    assert_eq!(sent[1]["content"], "What is the capital of France?");
    assert_eq!(sent[2]["content"], "Paris.");
    assert!(received[1].body["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "remember")));

    let noted = console.ok("/recall capitals --kind note");
    let hits = noted["hits"].as_array().cloned().unwrap_or_default();
    assert_eq!(hits.len(), 1, "{noted}");
    assert_eq!(hits[0]["text"], "The team asked about capitals.");
    assert_eq!(hits[0]["author"], "agent-1");
    assert_eq!(
        hits[0]["tasks"],
        json!([2]),
        "linked to the second ask's task"
    );
    let journal = console.ok("/journal --kind event --limit 50");
    let entries: Vec<Value> = journal["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e["tags"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("question")))
        })
        .collect();
    assert_eq!(entries.len(), 2, "{journal}");
    assert!(entries.iter().any(|e| e["text"]
        .as_str()
        .is_some_and(|t| t.contains("How many people live there?") && t.contains("two million"))));
    console.finish();

    // A new console session is a new conversation.
    let mut console = start(&data, &env);
    let fresh = console.ok("/ask Hi?");
    assert_eq!(fresh["history_turns"], 0);
    assert_eq!(roles(&fake.received()[3].body), ["system", "user"]);
    console.finish();
}

/// `ask_agent`: agent-1's ask task asks agent-2, which is killed (the whole process is) while its model thinks.
/// After the restart agent-1 goes on waiting for the same message's reply instead of asking again, agent-2
/// answers the message it is given again, and agent-1's answer uses that reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_asks_another_and_the_wait_survives_a_kill() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Reply::ok(fake_openai::tool_calls(
            &[(
                "call_1",
                "ask_agent",
                json!({"agent": "agent-2", "question": "What does parse return?"}),
            )],
            50,
            10,
        )),
        // agent-2's model never answers the first time: the process is killed meanwhile.
        Reply::Hang,
        Reply::ok(fake_openai::answer(
            "It returns the text in upper case.",
            30,
            8,
        )),
        Reply::ok(fake_openai::answer(
            "parse upper-cases its input, agent-2 says.",
            90,
            9,
        )),
    ]);
    let Setup {
        dir: _dir,
        env,
        data,
    } = setup(&fake);

    let mut console = start(&data, &env);
    console.send("/ask What does parse do?");
    // The second request is agent-2's.
    let mut console = restart_at_request(console, &fake, 2, (&data, &env));
    let task = ask_done(&mut console);
    assert_eq!(task["agent"], "agent-1", "{task}");
    let shown = console.ok(&format!("/task show {}", task["id"]));
    let answer = &shown["task"]["result"];
    assert_eq!(answer["text"], "parse upper-cases its input, agent-2 says.");
    assert_eq!(answer["tools"][0]["name"], "ask_agent");
    assert!(answer["tools"][0]["error"].is_null(), "{shown}");

    let received = fake.received();
    assert_eq!(
        received.len(),
        4,
        "{:?}",
        received.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    let offers = |i: usize, tool: &str| {
        received[i].body["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == tool))
    };
    assert!(offers(0, "ask_agent"), "the task may ask another agent");
    // agent-2's question, before and after the kill: the same, and it may not ask on.
    assert_eq!(received[1].body["messages"], received[2].body["messages"]);
    assert_eq!(
        received[1].body["messages"][1]["content"],
        "What does parse return?"
    );
    assert!(!offers(1, "ask_agent"));
    let reply = received[3].body["messages"][3]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reply.contains("upper case") && reply.contains("agent-2"),
        "{reply}"
    );

    // One question went to agent-2: the wait was resumed, not the question sent again.
    let history = console.ok("/history --kind ask");
    let sent: Vec<&Value> = history["messages"]
        .as_array()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    assert_eq!(sent.len(), 1, "{history}");
    console.finish();
}

/// Personas: an agent's `persona` starts the system prompt of the answers it gives, `--agent` answers as that
/// agent, and a persona too long for a prompt is a configuration error naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_answers_with_its_persona() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Reply::ok(fake_openai::answer("Looks fine.", 20, 2)),
        Reply::ok(fake_openai::answer("Ship it.", 20, 2)),
    ]);
    let Setup { dir, env, data } = setup(&fake);
    let config = dir.path().join("agents.toml");
    std::fs::write(
        &config,
        "[[agents]]\nname = \"agent-1\"\npersona = \"You are the reviewer: name the risk first.\"\n\n\
         [[agents]]\nname = \"agent-2\"\npersona = \"You are the release manager.\"\n",
    )
    .expect("config");
    let config = config.to_str().expect("utf-8 path");
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut console = Console::start(&data, &["--config", config], &pairs);
    let first = console.ok("/ask Is this change safe?");
    assert_eq!(first["text"], "Looks fine.");
    let second = console.ok("/ask Can we release? --agent agent-2");
    assert_eq!(second["text"], "Ship it.");
    let received = fake.received();
    let system = |i: usize| {
        received[i].body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        system(0).starts_with(
            "You are the reviewer: name the risk first.\n\nYou are an agent of Dream.OS"
        ),
        "{}",
        system(0)
    );
    assert!(
        system(1).starts_with("You are the release manager."),
        "{}",
        system(1)
    );
    let usage = console.ok("/usage --agent agent-2");
    assert_eq!(
        usage["calls"], 1,
        "the answer as agent-2 is counted for agent-2: {usage}"
    );
    console.finish();

    let long = dir.path().join("long.toml");
    std::fs::write(
        &long,
        format!(
            "[[agents]]\nname = \"agent-1\"\npersona = \"{}\"\n",
            "x".repeat(5_000)
        ),
    )
    .expect("config");
    let (status, _, stderr) = dreamos_tests::run_dreamos(
        &["--config", long.to_str().expect("utf-8 path"), "config"],
        &[],
        "",
    );
    assert!(!status.success());
    assert!(stderr.contains("agents[0].persona"), "{stderr}");
}

/// The same rule for a message: an `ask` message to an agent, redelivered after a kill, reuses the step its
/// handler had recorded, and the person gets the answer as the agent's reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_ask_message_reuses_its_recorded_step() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        Reply::ok(fake_openai::tool_calls(
            &[("call_1", "find_symbol", json!({"name": "load"}))],
            40,
            6,
        )),
        Reply::Hang,
        Reply::ok(fake_openai::answer("load is in tinyrepo.", 70, 5)),
    ]);
    let Setup {
        dir: _dir,
        env,
        data,
    } = setup(&fake);
    let mut console = start(&data, &env);
    console.ok("/send agent-3 where is load --kind ask");
    let mut console = restart_at_request(console, &fake, 2, (&data, &env));
    let reply = console.event("agent-3's reply", |e| {
        e["event"] == "reply" && e["data"]["from"] == "agent-3"
    });
    let body = reply["data"]["body"].to_string();
    assert!(body.contains("load is in tinyrepo."), "{reply}");
    assert!(body.contains("\"reused_steps\":1"), "{reply}");
    let steps: Vec<usize> = fake
        .received()
        .iter()
        .map(|r| roles(&r.body).len())
        .collect();
    assert_eq!(steps, [2, 4, 4], "the first step is not asked again");
    console.finish();
}
