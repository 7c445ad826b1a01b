//! Semantic recall through the built binary: with a model tagged `embeddings` (the scripted fake's), `/recall`
//! fuses BM25 and embedding similarity; entry vectors are made once and reused; a failing model leaves the
//! recall to BM25; without an embeddings model nothing changes.

use dreamos_tests::{
    fake_openai::{self, FakeOpenAi, Reply},
    Console,
};
use serde_json::{json, Value};

fn texts(recalled: &Value) -> Vec<String> {
    recalled["hits"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|h| h["text"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

const DEPLOY: &str = "The deploy failed because the disk was full.";
const LUNCH: &str = "Lunch is at noon on Fridays.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_fuses_bm25_and_embeddings_and_falls_back_to_bm25() {
    let fake = FakeOpenAi::start().await;
    fake.script([
        // The first recall embeds the query and both entries (newest first).
        Reply::ok(fake_openai::embeddings_of(&[
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.9, 0.1, 0.0],
        ])),
        // The second only the query: the entries' vectors are kept.
        Reply::ok(fake_openai::embeddings_of(&[vec![0.0, 1.0, 0.0]])),
        // The third fails.
        Reply::Raw {
            status: 400,
            body: "{\"error\": {\"message\": \"no embeddings here\"}}".to_string(),
        },
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let env = [
        ("DREAMOS_LLM__BASE_URL", fake.base_url.as_str()),
        (
            "DREAMOS_LLM__MODELS",
            r#"[{name = "chat", tags = ["fast"], context = 2048}, {name = "embedder", tags = ["embeddings"], context = 2048}]"#,
        ),
        // Only what the test writes is in the memory.
        ("DREAMOS_MEMORY__JOURNAL", "[]"),
    ];
    let mut console = Console::start(&data, &[], &env);
    console.ok(&format!("/remember {DEPLOY}"));
    console.ok(&format!("/remember {LUNCH}"));

    // No word of the query is in any entry: similarity alone finds the deploy.
    let found = console.ok("/recall storage exhausted");
    assert_eq!(found["ranked_by"], "bm25+embeddings", "{found}");
    assert_eq!(texts(&found), [DEPLOY], "{found}");
    let sent = fake.received();
    assert_eq!(sent[0].path, "/v1/embeddings");
    assert_eq!(sent[0].body["model"], "embedder");
    assert_eq!(
        sent[0].body["input"],
        json!(["storage exhausted", LUNCH, DEPLOY])
    );

    // BM25 finds the deploy, similarity ranks lunch first: fused, the deploy (in both lists) comes first.
    let found = console.ok("/recall disk");
    assert_eq!(texts(&found), [DEPLOY, LUNCH], "{found}");
    assert_eq!(fake.received()[1].body["input"], json!(["disk"]));

    // A failing model: BM25 alone, and the recall still answers.
    let found = console.ok("/recall disk");
    assert_eq!(found["ranked_by"], "bm25", "{found}");
    assert_eq!(texts(&found), [DEPLOY]);

    // The embeddings calls are in the ledger, the failed one too.
    let usage = console.ok("/usage");
    assert_eq!(usage["calls"], 3, "{usage}");
    assert_eq!(usage["failed"], 1, "{usage}");
    assert_eq!(usage["prompt_tokens"], 9 + 3, "{usage}");
    console.finish();

    // Without an embeddings model: BM25, and no request is made.
    let before = fake.requests();
    let mut console = Console::start(&data, &[], &[("DREAMOS_MEMORY__JOURNAL", "[]")]);
    let found = console.ok("/recall disk");
    assert_eq!(found["ranked_by"], "bm25");
    assert_eq!(texts(&found), [DEPLOY]);
    console.finish();
    assert_eq!(fake.requests(), before);
}
