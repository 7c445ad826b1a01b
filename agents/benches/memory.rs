//! Dreamscribe benchmark: durable writes, recall latency, rebuild from sled and store size, each beside a baseline
//! measured in the same run.
//!
//! ```text
//! cargo bench -p dreamos-agents --bench memory -- [--entries 100000] [--writers 256] [--queries 1000]
//!     [--churn 200000] [--query-words zipf|uniform]
//! ```
//!
//! Entries are generated deterministically (seeded) to look like journal text: 10-40 words drawn with a Zipf
//! distribution from a vocabulary of 3,000 (English stop words and common engineering words first, then
//! pronounceable pseudo-words), 0-3 tags from a set of 30, every kind, authors among the swarm, 8 agents and 12
//! people.
//!
//! 1. Durable writes: `--writers` concurrent tasks each awaiting `Memory::remember` (acknowledged once sled has
//!    it and fdatasync returned). Baseline: the cost floor of the storage alone, the same entries inserted one by
//!    one into the `memory` tree of a fresh store of their own with one `Store::flush` per 1,024 (the writer's
//!    largest batch).
//! 2. Recall: `--queries` queries of 2-4 words (no stop words), limit 10, through `Memory::search` (on this thread)
//!    and `Memory::recall` (freshness wait and the blocking pool). Baseline: for the same words, a plain Tantivy
//!    `BooleanQuery` of `TermQuery`s (Should) over the `text` field's stemmed terms on the same index, top 10 by
//!    score: no prefix expansion, no tags or author, no sled fetch, no snippets. Query words follow the text's Zipf
//!    distribution by default (the harder case: common words match many entries); `--query-words uniform` draws them
//!    uniformly from the vocabulary instead.
//! 3. Rebuild: the swarm is shut down, `<data-dir>/memory` deleted, and `MemoryIndex::open` times the rebuild.
//! 4. Size: `Store::size_on_disk` beside the entries' logical bytes and beside the baseline store of step 1, and the
//!    index directory. Then churn: the swarm restarts keeping at most `--entries` entries (`[retention]
//!    memory_max`, compacted every 200 ms) while `--churn` more are written; the sizes after each 50,000 show
//!    whether the space stays bounded.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use dreamos_agents::memory::{index::MemoryIndex, Memory, NewEntry, RecallQuery, MEMORY_INDEX_DIR};
use dreamos_agents::{SkillRegistry, Swarm};
use dreamos_runtime::{
    config::Config,
    memory::{Author, Entry, EntryId, EntryKind, Links, MemoryStore},
    Store,
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;
use tantivy::{
    collector::TopDocs,
    query::{BooleanQuery, Occur, Query, TermQuery},
    schema::IndexRecordOption,
    tokenizer::TokenStream,
    Term,
};

// The same allocator as the `dreamos` binary (see bot/src/main.rs for why), so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::arg;

const SEED: u64 = 0x0d7e_a350;
const VOCABULARY: usize = 3_000;
const CHURN_STEP: usize = 50_000;
/// The writer's largest durable batch, and so the baseline's flush group.
const FLUSH_GROUP: usize = 1024;

/// Ranked first (most frequent) in the vocabulary, as in English text; never used as query words.
const STOP_WORDS: &[&str] = &[
    "the", "to", "and", "of", "a", "in", "is", "for", "on", "that", "it", "with", "we", "was",
    "as", "be", "at", "by", "this", "are", "not", "from", "but", "or", "an", "after", "before",
    "so", "its", "they",
];

/// Journal-like words, ranked after the stop words.
const COMMON_WORDS: &[&str] = &[
    "deploy",
    "agent",
    "task",
    "message",
    "store",
    "index",
    "build",
    "release",
    "migration",
    "sled",
    "fsync",
    "latency",
    "queue",
    "retry",
    "timeout",
    "restart",
    "crash",
    "config",
    "database",
    "schema",
    "test",
    "failed",
    "passed",
    "merged",
    "review",
    "branch",
    "commit",
    "rollback",
    "staging",
    "production",
    "server",
    "client",
    "request",
    "response",
    "error",
    "warning",
    "disk",
    "memory",
    "cpu",
    "thread",
    "lock",
    "cache",
    "search",
    "query",
    "token",
    "session",
    "user",
    "captain",
    "broadcast",
    "scanner",
    "repository",
    "file",
    "line",
    "parser",
    "compile",
    "benchmark",
    "throughput",
    "decided",
    "because",
    "keep",
    "remove",
    "added",
    "fixed",
    "slow",
    "fast",
    "durable",
    "flush",
    "batch",
    "group",
    "writer",
    "reader",
    "snapshot",
    "backup",
    "restore",
    "upgrade",
    "version",
    "port",
    "network",
    "socket",
    "discord",
    "channel",
    "command",
    "reply",
    "summary",
    "week",
    "today",
    "yesterday",
    "morning",
    "night",
    "plan",
    "next",
    "done",
    "started",
    "stopped",
    "paused",
    "resumed",
    "owner",
    "team",
    "incident",
    "alert",
    "metric",
    "dashboard",
    "log",
    "trace",
    "span",
    "budget",
    "limit",
    "quota",
];

const TAGS: &[&str] = &[
    "deploy",
    "ci",
    "store",
    "index",
    "search",
    "agents",
    "tasks",
    "memory",
    "release",
    "incident",
    "perf",
    "bug",
    "design",
    "decision",
    "ops",
    "security",
    "discord",
    "scanner",
    "config",
    "docs",
    "test",
    "migration",
    "backup",
    "network",
    "api",
    "ui",
    "oncall",
    "roadmap",
    "review",
    "infra",
];

const SYLLABLES: &[&str] = &[
    "ba", "be", "bi", "bo", "bu", "ca", "ce", "co", "da", "de", "di", "do", "fa", "fe", "fi", "ga",
    "go", "ha", "he", "hi", "ka", "ke", "ko", "la", "le", "li", "lo", "lu", "ma", "me", "mi", "mo",
    "na", "ne", "ni", "no", "pa", "pe", "pi", "po", "ra", "re", "ri", "ro", "ru", "sa", "se", "si",
    "so", "ta", "te", "ti", "to", "tu", "va", "ve", "vi", "vo", "za", "zo", "ar", "en", "in", "on",
    "ul", "ex", "ix", "or", "an", "el",
];

const PEOPLE: &[&str] = &[
    "ada", "brook", "chen", "dara", "eli", "farah", "gus", "hana", "ivo", "jun", "kira", "lev",
];

/// The vocabulary in rank order, and the cumulative Zipf weights to draw from it.
struct Words {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Words {
    fn new() -> Words {
        let mut rng = StdRng::seed_from_u64(SEED);
        let mut words: Vec<String> = STOP_WORDS
            .iter()
            .chain(COMMON_WORDS)
            .map(|w| w.to_string())
            .collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        while words.len() < VOCABULARY {
            let syllables = rng.random_range(2..=4);
            let word: String = (0..syllables)
                .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
                .collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let mut total = 0.0;
        let cumulative = (0..words.len())
            .map(|rank| {
                total += 1.0 / (rank as f64 + 1.0);
                total
            })
            .collect();
        Words { words, cumulative }
    }

    fn zipf(&self, rng: &mut StdRng) -> &str {
        let total = *self.cumulative.last().expect("the vocabulary is not empty");
        let x = rng.random::<f64>() * total;
        let rank = self.cumulative.partition_point(|&c| c < x);
        &self.words[rank.min(self.words.len() - 1)]
    }

    /// Entry `i`: the same for the same `i` in every run.
    fn entry(&self, i: usize) -> NewEntry {
        let mut rng = StdRng::seed_from_u64(SEED ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let n = rng.random_range(10..=40);
        let mut text = String::with_capacity(n * 8);
        for w in 0..n {
            let word = self.zipf(&mut rng);
            if w == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    text.extend(first.to_uppercase());
                    text.push_str(chars.as_str());
                }
            } else {
                text.push_str(word);
            }
            if w + 1 < n {
                text.push_str(if rng.random_ratio(1, 12) { ", " } else { " " });
            }
        }
        if rng.random_ratio(1, 8) {
            text.push_str(&format!(" in {} ms", rng.random_range(1..5_000)));
        }
        text.push('.');
        let ntags = match rng.random_range(0..10) {
            0..=2 => 0,
            3..=6 => 1,
            7..=8 => 2,
            _ => 3,
        };
        let mut tags: Vec<String> = Vec::with_capacity(ntags);
        while tags.len() < ntags {
            let tag = TAGS[rng.random_range(0..TAGS.len())];
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_string());
            }
        }
        let kind = match rng.random_range(0..20) {
            0..=7 => EntryKind::Event,
            8..=12 => EntryKind::Note,
            13..=15 => EntryKind::Decision,
            16..=17 => EntryKind::Fact,
            _ => EntryKind::Summary,
        };
        let author = match rng.random_range(0..10) {
            0..=2 => Author::Swarm,
            3..=6 => Author::Agent(format!("agent-{}", rng.random_range(1..=8))),
            _ => {
                let who = rng.random_range(0..PEOPLE.len());
                Author::Person {
                    frontend: "discord".into(),
                    user: format!("{}", 100_000_000_000_000_000u64 + who as u64 * 7_919),
                    name: PEOPLE[who].into(),
                }
            }
        };
        NewEntry {
            author,
            kind,
            text,
            tags,
            links: Links::default(),
        }
    }

    /// 2-4 distinct words, none a stop word.
    fn query(&self, rng: &mut StdRng, uniform: bool) -> String {
        let n = rng.random_range(2..=4);
        let mut words: Vec<&str> = Vec::with_capacity(n);
        while words.len() < n {
            let word = if uniform {
                &self.words[rng.random_range(0..self.words.len())]
            } else {
                self.zipf(rng)
            };
            if !STOP_WORDS.contains(&word) && !words.contains(&word) {
                words.push(word);
            }
        }
        words.join(" ")
    }
}

/// Bytes an entry says: its text, tags, 16-byte id, one byte of kind and its author's key.
fn logical_bytes(e: &NewEntry) -> u64 {
    (e.text.len() + e.tags.iter().map(String::len).sum::<usize>() + 16 + 1 + e.author.key().len())
        as u64
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

/// p50, p99 and max in ms, for the JSON line.
fn summary(sorted: &[Duration]) -> serde_json::Value {
    json!({
        "p50_ms": ms(percentile(sorted, 0.5)),
        "p99_ms": ms(percentile(sorted, 0.99)),
        "max_ms": ms(sorted.last().copied().unwrap_or_default()),
    })
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn config(entries: usize, writers: usize) -> Config {
    let mut config = Config::defaults();
    config.memory.journal = Vec::new();
    // Every writer may have an entry waiting at once.
    config.memory.max_pending = config.memory.max_pending.max(writers + 64);
    config.retention.memory_max = config.retention.memory_max.max(entries as u64);
    config
}

/// The storage floor: the same entries, inserted one by one into a fresh store's `memory` tree, one flush per
/// [`FLUSH_GROUP`]. Returns entries/s, the flushes' durations (sorted) and the store's size on disk.
fn baseline_writes(
    batch: &[NewEntry],
    sync: dreamos_runtime::config::SyncMode,
) -> (f64, Vec<Duration>, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_with(dir.path(), sync).expect("store");
    let trees = MemoryStore::open(&store).expect("memory trees");
    let now = dreamos_runtime::message::Millis::now().0;
    let mut flushes = Vec::new();
    let t0 = Instant::now();
    for (i, e) in batch.iter().enumerate() {
        let entry = Entry {
            id: EntryId(ulid::Ulid::from_parts(now, i as u128)),
            author: e.author.clone(),
            kind: e.kind,
            text: e.text.clone(),
            tags: e.tags.clone(),
            links: e.links.clone(),
        };
        trees.insert(&entry).expect("insert");
        if (i + 1) % FLUSH_GROUP == 0 || i + 1 == batch.len() {
            let f = Instant::now();
            store.flush().expect("flush");
            flushes.push(f.elapsed());
        }
    }
    let rate = batch.len() as f64 / t0.elapsed().as_secs_f64();
    flushes.sort();
    let size = store.size_on_disk().expect("size");
    (rate, flushes, size)
}

/// `writers` concurrent tasks each awaiting `remember` until `batch` is written. Returns entries/s, the
/// acknowledgement latencies (sorted) and the number refused.
async fn write_all(
    memory: &Memory,
    batch: Arc<Vec<NewEntry>>,
    writers: usize,
) -> (f64, Vec<Duration>, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for _ in 0..writers {
        let memory = memory.clone();
        let batch = batch.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut refused = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(entry) = batch.get(i) else { break };
                let t = Instant::now();
                match memory.remember(entry.clone()).await {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(_) => refused += 1,
                }
            }
            (latencies, refused)
        }));
    }
    let mut latencies = Vec::with_capacity(batch.len());
    let mut refused = 0;
    for t in tasks {
        let (l, r) = t.await.expect("writer task");
        latencies.extend(l);
        refused += r;
    }
    let rate = latencies.len() as f64 / t0.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies, refused)
}

/// The baseline query: the words' stemmed `text` terms, Should, top 10 by score.
fn raw_search(memory: &Memory, words: &str) -> usize {
    let searcher = memory.index().searcher();
    let field = searcher
        .schema()
        .get_field("text")
        .expect("the index has a text field");
    let mut analyzer = searcher
        .index()
        .tokenizer_for_field(field)
        .expect("the text field's tokenizer");
    let mut stream = analyzer.token_stream(words);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    while let Some(token) = stream.next() {
        clauses.push((
            Occur::Should,
            Box::new(TermQuery::new(
                Term::from_field_text(field, &token.text),
                IndexRecordOption::WithFreqs,
            )),
        ));
    }
    let query = BooleanQuery::new(clauses);
    searcher
        .search(&query, &TopDocs::with_limit(10).order_by_score())
        .expect("raw search")
        .len()
}

fn main() {
    let entries: usize = arg("--entries", 100_000);
    let writers: usize = arg("--writers", 256).max(1);
    let queries: usize = arg("--queries", 1_000).max(1);
    let churn: usize = arg("--churn", 200_000);
    let uniform = arg("--query-words", "zipf".to_string()) == "uniform";
    let words = Words::new();
    let first: Arc<Vec<NewEntry>> = Arc::new((0..entries).map(|i| words.entry(i)).collect());
    let logical: u64 = first.iter().map(logical_bytes).sum();
    let sync = Config::defaults().store.sync;
    println!(
        "dreamos memory benchmark: {entries} entries, {writers} concurrent writers, {queries} queries ({} words), {churn} churned, sync={sync:?}, 2 worker threads",
        if uniform { "uniform" } else { "zipf" }
    );
    println!(
        "entries: {:.1} words and {:.0} logical bytes on average",
        first
            .iter()
            .map(|e| e.text.split(' ').count())
            .sum::<usize>() as f64
            / entries.max(1) as f64,
        logical as f64 / entries.max(1) as f64
    );

    // 1. Baseline: the storage floor, on a store of its own (on the same disk), before the swarm starts.
    let (raw_rate, raw_flushes, raw_size) = baseline_writes(&first, sync);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let report = runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let index_dir = data.join(MEMORY_INDEX_DIR);
        let store = Store::open_with(&data, sync).expect("store");
        let swarm = Swarm::start(config(entries, writers), store.clone(), SkillRegistry::builtin())
            .await
            .expect("swarm");
        let memory = swarm.memory().clone();

        // 1. Durable writes.
        let (rate, acks, refused) = write_all(&memory, first.clone(), writers).await;
        println!();
        println!("1. durable writes");
        println!(
            "baseline  sled inserts + Store::flush per {FLUSH_GROUP}, 1 thread   {raw_rate:>10.0} entries/s  flush p50 {:>7.3} ms  p99 {:>7.3} ms",
            ms(percentile(&raw_flushes, 0.5)),
            ms(percentile(&raw_flushes, 0.99))
        );
        println!(
            "ours      Memory::remember, {writers} writers, durable ack   {rate:>10.0} entries/s  ack   p50 {:>7.3} ms  p99 {:>7.3} ms  ({:.0}% of baseline; refused {refused})",
            ms(percentile(&acks, 0.5)),
            ms(percentile(&acks, 0.99)),
            rate / raw_rate * 100.0
        );

        // 2. Recall. The first recall waits for the index to hold everything written.
        let mut rng = StdRng::seed_from_u64(SEED + 1);
        let warm: Vec<String> = (0..100).map(|_| words.query(&mut rng, uniform)).collect();
        let asked: Vec<String> = (0..queries).map(|_| words.query(&mut rng, uniform)).collect();
        let q = |w: &str| RecallQuery {
            words: w.to_string(),
            limit: 10,
            ..RecallQuery::default()
        };
        let fresh = Instant::now();
        memory.recall(q(&warm[0])).await.expect("recall");
        let fresh = fresh.elapsed();
        for w in &warm {
            let _ = memory.search(&q(w));
            let _ = raw_search(&memory, w);
        }
        let segments = memory.index().searcher().segment_readers().len();
        let docs = memory.index().num_docs();
        let (mut raw, mut search, mut recall) = (Vec::new(), Vec::new(), Vec::new());
        let (mut raw_hits, mut hits, mut matched, mut failed) = (0usize, 0usize, 0usize, 0usize);
        for w in &asked {
            let t = Instant::now();
            raw_hits += raw_search(&memory, w);
            raw.push(t.elapsed());
            let t = Instant::now();
            match memory.search(&q(w)) {
                Ok(found) => {
                    search.push(t.elapsed());
                    hits += found.hits.len();
                    matched += found.matched;
                }
                Err(_) => failed += 1,
            }
            let t = Instant::now();
            match memory.recall(q(w)).await {
                Ok(_) => recall.push(t.elapsed()),
                Err(_) => failed += 1,
            }
        }
        raw.sort();
        search.sort();
        recall.sort();
        let line = |name: &str, v: &[Duration], extra: String| {
            println!(
                "{name:<58}p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms{extra}",
                ms(percentile(v, 0.5)),
                ms(percentile(v, 0.99)),
                ms(v.last().copied().unwrap_or_default())
            );
        };
        println!();
        println!(
            "2. recall, limit 10, {docs} entries in {segments} segments (first recall waited {:.1} ms for the index)",
            ms(fresh)
        );
        line(
            "baseline  raw Tantivy BooleanQuery of text terms",
            &raw,
            format!("  ({:.1} hits/query)", raw_hits as f64 / queries as f64),
        );
        line(
            "ours      Memory::search (this thread)",
            &search,
            format!(
                "  ({:.1} hits/query, {:.0} matched/query, failed {failed})",
                hits as f64 / queries as f64,
                matched as f64 / queries as f64
            ),
        );
        line("ours      Memory::recall (freshness wait + blocking pool)", &recall, String::new());

        // 4 (first half). Size after the first entries.
        let size = store.size_on_disk().expect("size");
        swarm.shutdown(Duration::from_secs(5)).await;
        drop(swarm);
        let index_size = dir_size(&index_dir);
        drop(memory);
        drop(store);

        // 3. Rebuild from sled.
        let store = Store::open_with(&data, sync).expect("store");
        std::fs::remove_dir_all(&index_dir).expect("delete the index");
        let trees = MemoryStore::open(&store).expect("memory trees");
        let t = Instant::now();
        let (index, writer, _, opened) = MemoryIndex::open(&index_dir, &trees).expect("rebuild");
        let rebuild = t.elapsed().as_secs_f64();
        drop(writer);
        drop(index);
        let rebuilt_size = dir_size(&index_dir);
        println!();
        println!("3. rebuild of the index from sled (MemoryIndex::open after deleting <data-dir>/memory)");
        println!(
            "ours      {} entries in {rebuild:.2} s: {:>10.0} entries/s  (rebuilt: {})",
            opened.entries,
            opened.entries as f64 / rebuild,
            opened.rebuilt.as_deref().unwrap_or("no")
        );

        let per = |bytes: u64| bytes as f64 * 100_000.0 / entries.max(1) as f64;
        println!();
        println!("4. size on disk (per 100,000 entries)");
        println!(
            "logical   text + tags + id + kind + author               {:>8.1} MiB",
            mib(per(logical) as u64)
        );
        println!(
            "baseline  sled, the same entries alone                   {:>8.1} MiB  ({:.2}x logical)",
            mib(per(raw_size) as u64),
            raw_size as f64 / logical as f64
        );
        println!(
            "ours      Store::size_on_disk after the writes           {:>8.1} MiB  ({:.2}x logical)",
            mib(per(size) as u64),
            size as f64 / logical as f64
        );
        println!(
            "ours      memory index directory                         {:>8.1} MiB  (after the rebuild: {:.1} MiB)",
            mib(per(index_size) as u64),
            mib(per(rebuilt_size) as u64)
        );

        // 4 (second half). Churn: at most `entries` kept, compacted every 200 ms.
        let mut config = config(entries, writers);
        config.retention.memory_max = entries as u64;
        config.retention.compact_every = Duration::from_millis(200);
        let swarm = Swarm::start(config, store.clone(), SkillRegistry::builtin())
            .await
            .expect("swarm");
        let memory = swarm.memory().clone();
        println!();
        println!(
            "churn: {churn} more entries, [retention] memory_max = {entries}, compact_every = 200ms (sizes absolute)"
        );
        println!(
            "written {:>8}  kept {:>8}  store {:>8.1} MiB  index {:>8.1} MiB  (before the churn)",
            entries,
            memory.stats().entries,
            mib(size),
            mib(index_size)
        );
        let mut churned = Vec::new();
        let mut written = entries;
        while written < entries + churn {
            let end = (written + CHURN_STEP).min(entries + churn);
            let batch: Arc<Vec<NewEntry>> = Arc::new((written..end).map(|i| words.entry(i)).collect());
            let (rate, _, refused) = write_all(&memory, batch, writers).await;
            written = end;
            let size = store.size_on_disk().expect("size");
            let kept = memory.stats().entries;
            let index = dir_size(&index_dir);
            println!(
                "written {written:>8}  kept {kept:>8}  store {:>8.1} MiB  index {:>8.1} MiB  ({rate:.0} entries/s, refused {refused})",
                mib(size),
                mib(index)
            );
            churned.push(json!({
                "written": written, "kept": kept, "store_bytes": size, "index_bytes": index, "entries_per_s": rate,
            }));
        }
        // Retention removes at most 10,000 entries a period: let it catch up, then the last figure.
        let deadline = Instant::now() + Duration::from_secs(10);
        while memory.stats().entries > entries as u64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Let the index commit what retention removed, as a recall would.
        let _ = memory.recall(q(&warm[0])).await;
        let settled_size = store.size_on_disk().expect("size");
        let settled_kept = memory.stats().entries;
        let settled_index = dir_size(&index_dir);
        println!(
            "settled           kept {settled_kept:>8}  store {:>8.1} MiB  index {:>8.1} MiB  ({:.2}x the store before the churn)",
            mib(settled_size),
            mib(settled_index),
            settled_size as f64 / size as f64
        );
        swarm.shutdown(Duration::from_secs(5)).await;

        json!({
            "bench": "memory",
            "entries": entries, "writers": writers, "queries": queries, "churn_entries": churn,
            "query_words": if uniform { "uniform" } else { "zipf" },
            "writes": {
                "baseline_entries_per_s": raw_rate,
                "baseline_flush": summary(&raw_flushes),
                "entries_per_s": rate,
                "ack": summary(&acks),
                "refused": refused,
            },
            "recall": {
                "entries": docs, "segments": segments,
                "baseline_raw_tantivy": summary(&raw),
                "search": summary(&search),
                "recall": summary(&recall),
                "failed": failed,
            },
            "rebuild": {
                "entries": opened.entries, "seconds": rebuild, "entries_per_s": opened.entries as f64 / rebuild,
            },
            "size": {
                "logical_bytes": logical, "baseline_store_bytes": raw_size, "store_bytes": size,
                "index_bytes": index_size, "rebuilt_index_bytes": rebuilt_size,
                "amplification": size as f64 / logical as f64,
            },
            "churn_steps": churned,
            "settled": { "kept": settled_kept, "store_bytes": settled_size, "index_bytes": settled_index },
        })
    });
    println!();
    println!("{report}");
}
