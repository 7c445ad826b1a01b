//! The swarm end to end below the frontends: real sled store in a temp dir, real actors, real log.

use std::{sync::Arc, time::Duration};

use dreamos_agents::events::EventReceiver;
use dreamos_agents::{
    message::{Address, Body, Priority},
    ControlVerb, Error, Principal, SkillRegistry, Swarm, SwarmEvent,
};
use dreamos_runtime::{
    config::{AgentConfig, Config, Role},
    log::{HistoryQuery, ReceiptStatus},
    Store,
};

const DEADLINE: Duration = Duration::from_secs(10);

struct Harness {
    dir: tempfile::TempDir,
    config: Config,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            dir: tempfile::tempdir().expect("temp dir"),
            config: Config::defaults(),
        }
    }

    async fn start(&self) -> Swarm {
        let store = Store::open(self.dir.path()).expect("store");
        Swarm::start(self.config.clone(), store, SkillRegistry::builtin())
            .await
            .expect("swarm starts")
    }
}

fn captain() -> Principal {
    Principal::new("console", Role::Captain)
}

/// Waits for the first reply to `id`, failing after the deadline.
async fn reply_to(
    events: &mut EventReceiver,
    id: dreamos_agents::message::MessageId,
) -> Arc<dreamos_runtime::log::StoredMessage> {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Ok(SwarmEvent::Message(m)) if m.envelope.reply_to == Some(id) => return m,
                Ok(_) => {}
                Err(err) => panic!("event stream broke: {err}"),
            }
        }
    })
    .await
    .expect("reply within the deadline")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_answered_and_history_shows_it_handled() {
    let h = Harness::new();
    let swarm = h.start().await;
    assert_eq!(swarm.agents().len(), 4);
    let mut events = swarm.subscribe();
    let phone = swarm.cell_phone(&captain());
    let sent = phone
        .send(
            "agent-1".parse().expect("address"),
            "ping",
            Body::text("hello"),
            Priority::Normal,
        )
        .await
        .expect("accepted");
    assert_eq!(sent.seq.0, 1);
    let reply = reply_to(&mut events, sent.id).await;
    assert_eq!(reply.envelope.to, Address::user("console"));
    assert_eq!(
        reply.envelope.body.text_field().as_deref(),
        Some("pong: hello")
    );
    assert!(swarm.drain(DEADLINE).await);
    let page = swarm.history(&HistoryQuery::default()).expect("history");
    let original = page
        .entries
        .iter()
        .find(|e| e.message.envelope.id == sent.id)
        .expect("in history");
    assert_eq!(original.receipts.len(), 1);
    assert_eq!(original.receipts[0].status, ReceiptStatus::Handled);
    swarm.shutdown(DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_agent_takes_the_most_urgent_first_when_resumed() {
    let h = Harness::new();
    let swarm = h.start().await;
    let mut events = swarm.subscribe();
    let captain_phone = swarm.captain_phone(&captain()).expect("captain");
    let agent: Address = "agent-2".parse().expect("address");
    let paused = captain_phone
        .control(agent.clone(), ControlVerb::Pause)
        .await
        .expect("pause");
    reply_to(&mut events, paused.id).await;
    let phone = swarm.cell_phone(&captain());
    let mut sent = Vec::new();
    for (text, priority) in [
        ("low", Priority::Low),
        ("normal", Priority::Normal),
        ("urgent", Priority::Urgent),
        ("high", Priority::High),
    ] {
        sent.push(
            phone
                .send(agent.clone(), "ping", Body::text(text), priority)
                .await
                .expect("accepted"),
        );
    }
    assert_eq!(swarm.agent("agent-2").expect("agent").queue, 4);
    captain_phone
        .control(agent.clone(), ControlVerb::Resume)
        .await
        .expect("resume");
    let mut order = Vec::new();
    while order.len() < 4 {
        match tokio::time::timeout(DEADLINE, events.recv()).await {
            Ok(Ok(SwarmEvent::Message(m))) => {
                if let Some(text) = m.envelope.body.text_field() {
                    if let Some(word) = text.strip_prefix("pong: ") {
                        order.push(word.to_string());
                    }
                }
            }
            Ok(Ok(_)) => {}
            other => panic!("no reply: {other:?}"),
        }
    }
    assert_eq!(order, ["urgent", "high", "normal", "low"]);
    swarm.shutdown(DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_records_which_agents_acknowledged() {
    let h = Harness::new();
    let swarm = h.start().await;
    let captain_phone = swarm.captain_phone(&captain()).expect("captain");
    let sent = captain_phone
        .broadcast(Address::All, "all hands", Priority::Urgent)
        .await
        .expect("broadcast");
    assert_eq!(sent.recipients.len(), 4);
    assert!(swarm.drain(DEADLINE).await);
    let page = swarm
        .history(&HistoryQuery {
            kind: Some("order".into()),
            ..Default::default()
        })
        .expect("history");
    let receipts = &page.entries[0].receipts;
    assert_eq!(receipts.len(), 4);
    assert!(receipts.iter().all(|r| r.handled()), "{receipts:?}");
    swarm.shutdown(DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_subscriptions_choose_recipients() {
    let mut h = Harness::new();
    h.config.agents = vec![
        AgentConfig {
            name: "a".into(),
            skills: vec!["*".into()],
            groups: vec!["red".into()],
            subscribe: vec!["ping".into()],
            persona: String::new(),
        },
        AgentConfig {
            name: "b".into(),
            skills: vec!["*".into()],
            groups: vec!["red".into()],
            subscribe: vec!["rep*".into()],
            persona: String::new(),
        },
        AgentConfig {
            name: "c".into(),
            skills: vec!["ping".into()],
            groups: vec![],
            subscribe: vec!["*".into()],
            persona: String::new(),
        },
    ];
    let swarm = h.start().await;
    let phone = swarm.cell_phone(&captain());
    let check = |to: &str, kind: &str| {
        let phone = phone.clone();
        let to: Address = to.parse().expect("address");
        let kind = kind.to_string();
        async move {
            phone
                .send(to, &kind, Body::text("x"), Priority::Normal)
                .await
                .map(|s| {
                    s.recipients
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                })
                .map_err(|e| e.kind())
        }
    };
    assert_eq!(check("group:red", "ping").await, Ok(vec!["a".to_string()]));
    assert_eq!(
        check("group:red", "report").await,
        Ok(vec!["b".to_string()])
    );
    assert_eq!(
        check("all", "ping").await,
        Ok(vec!["a".to_string(), "c".to_string()])
    );
    // Direct messages ignore subscriptions but need the skill.
    assert_eq!(check("b", "ping").await, Ok(vec!["b".to_string()]));
    assert_eq!(check("c", "report").await, Err("unknown_skill"));
    assert_eq!(check("group:blue", "ping").await, Err("unknown_group"));
    assert_eq!(check("nobody", "ping").await, Err("unknown_agent"));
    swarm.shutdown(DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sends_are_refused_and_nothing_is_stored() {
    let h = Harness::new();
    let swarm = h.start().await;
    let phone = swarm.cell_phone(&captain());
    let big = "x".repeat(70 * 1024);
    let err = phone
        .send(
            "agent-1".parse().expect("address"),
            "ping",
            Body::text(&big),
            Priority::Normal,
        )
        .await
        .expect_err("too large");
    assert!(matches!(err, Error::BodyTooLarge { .. }), "{err:?}");
    let err = phone
        .send(
            "agent-1".parse().expect("address"),
            "Not A Kind",
            Body::text("x"),
            Priority::Normal,
        )
        .await
        .expect_err("bad kind");
    assert_eq!(err.kind(), "invalid_argument");
    let viewer = Principal::new("eve", Role::Viewer);
    assert_eq!(
        swarm.captain_phone(&viewer).err().map(|e| e.kind()),
        Some("forbidden")
    );
    assert_eq!(
        swarm
            .spawn_agent(&viewer, "agent-9", None, None)
            .await
            .err()
            .map(|e| e.kind()),
        Some("forbidden")
    );
    assert_eq!(swarm.status().messages.last_seq, 0, "nothing was stored");
    swarm.shutdown(DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_agent_keeps_its_queue_and_gets_it_when_spawned() {
    let h = Harness::new();
    let swarm = h.start().await;
    let who = captain();
    let stopped = swarm.stop_agent(&who, "agent-3").await.expect("stop");
    assert_eq!(stopped.status.as_str(), "stopped");
    assert_eq!(
        swarm
            .stop_agent(&who, "agent-3")
            .await
            .err()
            .map(|e| e.kind()),
        Some("agent_state")
    );
    let mut events = swarm.subscribe();
    let sent = swarm
        .cell_phone(&who)
        .send(
            "agent-3".parse().expect("address"),
            "ping",
            Body::text("later"),
            Priority::Normal,
        )
        .await
        .expect("accepted while stopped");
    assert_eq!(swarm.agent("agent-3").expect("agent").queue, 1);
    let spawned = swarm
        .spawn_agent(&who, "agent-3", None, None)
        .await
        .expect("spawn");
    assert!(spawned.status.is_live());
    reply_to(&mut events, sent.id).await;
    // A brand-new agent, and a duplicate.
    let new = swarm
        .spawn_agent(
            &who,
            "agent-5",
            Some(vec!["ping".into()]),
            Some(vec!["crew".into()]),
        )
        .await
        .expect("spawn new");
    assert_eq!(new.skills, ["ping"]);
    assert_eq!(
        swarm
            .spawn_agent(&who, "agent-5", None, None)
            .await
            .err()
            .map(|e| e.kind()),
        Some("agent_exists")
    );
    swarm.shutdown(DEADLINE).await;
    drop(swarm);

    // The roster survives a restart: agent-5 is back, and a stopped agent stays stopped.
    let swarm = h.start().await;
    assert!(swarm.agent("agent-5").expect("agent-5").status.is_live());
    swarm.stop_agent(&who, "agent-2").await.expect("stop");
    swarm.shutdown(DEADLINE).await;
    drop(swarm);
    let swarm = h.start().await;
    assert_eq!(
        swarm.agent("agent-2").expect("agent-2").status.as_str(),
        "stopped"
    );
    swarm.shutdown(DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_are_handled_after_a_restart_of_the_swarm() {
    let h = Harness::new();
    let swarm = h.start().await;
    let who = captain();
    let captain_phone = swarm.captain_phone(&who).expect("captain");
    // Subscribed before sending, so that a fast acknowledgement cannot slip past.
    let mut events = swarm.subscribe();
    let sent = captain_phone
        .control("agent-4".parse().expect("address"), ControlVerb::Pause)
        .await
        .expect("pause");
    drop(captain_phone);
    reply_to(&mut events, sent.id).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            swarm
                .cell_phone(&who)
                .send(
                    "agent-4".parse().expect("address"),
                    "ping",
                    Body::text(&format!("m{i}")),
                    Priority::Normal,
                )
                .await
                .expect("accepted")
                .id,
        );
    }
    swarm.shutdown(DEADLINE).await;
    drop(swarm);

    let swarm = h.start().await;
    assert_eq!(
        swarm.agent("agent-4").expect("agent").status.as_str(),
        "paused"
    );
    assert_eq!(swarm.agent("agent-4").expect("agent").queue, 20);
    let mut events = swarm.subscribe();
    swarm
        .captain_phone(&who)
        .expect("captain")
        .control("agent-4".parse().expect("address"), ControlVerb::Resume)
        .await
        .expect("resume");
    for id in ids {
        reply_to(&mut events, id).await;
    }
    swarm.shutdown(DEADLINE).await;
}

/// Fails the store underneath the swarm the first time it runs, as a disk dying mid-write would: the
/// acknowledgement of the message it handles cannot be written.
struct BreaksTheDisk;

static BROKE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[async_trait::async_trait]
impl dreamos_agents::Skill for BreaksTheDisk {
    fn name(&self) -> &'static str {
        "break_disk"
    }

    fn summary(&self) -> &'static str {
        "test skill: fails every flush of the store, once"
    }

    async fn run(
        &self,
        cx: &mut dreamos_agents::SkillContext<'_>,
    ) -> Result<(), dreamos_agents::SkillError> {
        if !BROKE.swap(true, std::sync::atomic::Ordering::AcqRel) {
            cx.store().fail_flushes_for_test(true);
        }
        cx.reply(serde_json::json!({ "text": "handled" }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_under_an_acknowledgement_stops_the_swarm_and_the_message_comes_back() {
    let h = Harness::new();
    let start = || async {
        let store = Store::open(h.dir.path()).expect("store");
        let mut skills = SkillRegistry::builtin();
        skills.add(Arc::new(BreaksTheDisk));
        Swarm::start(h.config.clone(), store, skills)
            .await
            .expect("swarm starts")
    };
    let swarm = start().await;
    let sent = swarm
        .cell_phone(&captain())
        .send(
            "agent-1".parse().expect("address"),
            "break_disk",
            Body::text("x"),
            Priority::Normal,
        )
        .await
        .expect("accepted");
    // The handler's acknowledgement cannot be written: the swarm says so and refuses from then on.
    let error = tokio::time::timeout(DEADLINE, swarm.failed())
        .await
        .expect("the swarm reports the failed store");
    assert!(error.contains("injected by a test"), "{error}");
    let refused = swarm
        .cell_phone(&captain())
        .send(
            "agent-2".parse().expect("address"),
            "ping",
            Body::text("after"),
            Priority::Normal,
        )
        .await
        .expect_err("nothing is accepted after the failure");
    assert_eq!(refused.kind(), "store_failed", "{refused}");
    swarm.shutdown(DEADLINE).await;
    drop(swarm);

    // After the restart the message is handled, exactly once whether or not its first handling reached the disk.
    let swarm = start().await;
    assert!(swarm.drain(DEADLINE).await);
    let page = swarm
        .history(&HistoryQuery {
            kind: Some("reply".into()),
            ..Default::default()
        })
        .expect("history");
    let replies = page
        .entries
        .iter()
        .filter(|e| e.message.envelope.reply_to == Some(sent.id))
        .count();
    assert_eq!(replies, 1, "handled exactly once");
    let original = swarm
        .history(&HistoryQuery {
            kind: Some("break_disk".into()),
            ..Default::default()
        })
        .expect("history");
    assert!(original.entries[0].receipts[0].handled());
    swarm.shutdown(DEADLINE).await;
}

/// A skill that runs until it is dropped (or for a minute), counting its starts.
struct Long;

static LONG_STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[async_trait::async_trait]
impl dreamos_agents::Skill for Long {
    fn name(&self) -> &'static str {
        "long"
    }

    fn summary(&self) -> &'static str {
        "test skill: runs for a minute"
    }

    async fn run(
        &self,
        cx: &mut dreamos_agents::SkillContext<'_>,
    ) -> Result<(), dreamos_agents::SkillError> {
        LONG_STARTS.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        tokio::time::sleep(Duration::from_secs(60)).await;
        cx.reply(serde_json::json!({ "text": "done" }))
    }
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captain_orders_reach_an_agent_in_the_middle_of_a_long_skill_at_once() {
    let h = Harness::new();
    let store = Store::open(h.dir.path()).expect("store");
    let mut skills = SkillRegistry::builtin();
    skills.add(Arc::new(Long));
    let swarm = Swarm::start(h.config.clone(), store, skills)
        .await
        .expect("swarm starts");
    let mut events = swarm.subscribe();
    let agent: Address = "agent-1".parse().expect("address");
    let long = swarm
        .cell_phone(&captain())
        .send(agent.clone(), "long", Body::text("x"), Priority::Normal)
        .await
        .expect("accepted");
    until("agent-1 starts the long skill", || {
        LONG_STARTS.load(std::sync::atomic::Ordering::Acquire) == 1
    })
    .await;
    let captain_phone = swarm.captain_phone(&captain()).expect("captain");
    // `report` and `pause` are obeyed while the skill runs; the skill goes on.
    for verb in [ControlVerb::Report, ControlVerb::Pause, ControlVerb::Resume] {
        let sent = captain_phone
            .control(agent.clone(), verb)
            .await
            .expect("order accepted");
        let heard = tokio::time::Instant::now();
        reply_to(&mut events, sent.id).await;
        assert!(
            heard.elapsed() < Duration::from_millis(100),
            "{verb:?} acknowledged after {:?}",
            heard.elapsed()
        );
    }
    // `stop` ends the skill and the agent within 100 ms of its acceptance.
    let stop = captain_phone
        .control(agent.clone(), ControlVerb::Stop)
        .await
        .expect("stop accepted");
    let heard = tokio::time::Instant::now();
    reply_to(&mut events, stop.id).await;
    until("agent-1 is stopped", || {
        swarm.agent("agent-1").ok().map(|a| a.status.as_str()) == Some("stopped")
    })
    .await;
    assert!(
        heard.elapsed() < Duration::from_millis(100),
        "stopped after {:?}",
        heard.elapsed()
    );
    // The interrupted message was not handled: it is still owed, and runs again when the agent is back.
    let page = swarm
        .history(&HistoryQuery {
            kind: Some("long".into()),
            ..Default::default()
        })
        .expect("history");
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].message.envelope.id, long.id);
    assert!(
        matches!(
            page.entries[0].receipts[0].status,
            ReceiptStatus::Pending { .. }
        ),
        "{:?}",
        page.entries[0].receipts
    );
    assert_eq!(swarm.agent("agent-1").expect("agent").queue, 1);
    swarm
        .spawn_agent(&captain(), "agent-1", None, None)
        .await
        .expect("spawn again");
    until("the long skill starts again", || {
        LONG_STARTS.load(std::sync::atomic::Ordering::Acquire) == 2
    })
    .await;
    swarm.shutdown(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captain_pause_to_everyone_holds_new_tasks_until_resume() {
    use dreamos_runtime::task::{Origin, TaskSpec, TaskStatus};
    let h = Harness::new();
    let swarm = h.start().await;
    let captain_phone = swarm.captain_phone(&captain()).expect("captain");
    captain_phone
        .control(Address::All, ControlVerb::Pause)
        .await
        .expect("pause");
    let spec = TaskSpec::new(
        "ping",
        serde_json::json!({"text": "held"}),
        1,
        Origin::new("console", "console"),
    );
    let task = swarm.tasks().create(spec).await.expect("create");
    assert_eq!(
        task.status,
        TaskStatus::Queued,
        "held while the swarm is paused"
    );
    captain_phone
        .control(Address::All, ControlVerb::Resume)
        .await
        .expect("resume");
    let tasks = swarm.tasks().clone();
    let id = task.id;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let now = tasks.get(id).await.expect("get");
        if now.status == TaskStatus::Done {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    swarm.shutdown(DEADLINE).await;
}
