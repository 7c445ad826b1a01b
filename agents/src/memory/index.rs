//! Dreamscribe's search index: Tantivy (BM25) over each entry's text, tags and author, derived from sled.
//!
//! sled is the truth. Every commit of this index carries a payload saying how far it got: the newest entry it
//! holds and the last removal it applied. At start the index catches up from there (entries after that id,
//! removals after that sequence number); when it is missing, unreadable, from another schema, or disagrees with
//! sled on the number of entries after catching up, it is rebuilt from sled.
//!
//! A query's words are analyzed as the text is (lowercase, ASCII folding, English stop words and stemming). Each
//! word scores by its best match among: the stemmed word in the text, in the tags and in the author, and (for
//! words of three letters or more) the indexed words it begins, at a lower weight, so `migrat` finds
//! "migration" and `authent` "authentication". Filters score nothing. Ties go to the newer entry.

use std::{
    collections::BTreeSet,
    ops::Bound,
    path::{Path, PathBuf},
    time::Instant,
};

use dreamos_runtime::{
    memory::{Entry, EntryId, MemoryStore},
    message::Millis,
};
use serde::{Deserialize, Serialize};
use tantivy::{
    collector::{
        sort_key::{SortBySimilarityScore, SortByStaticFastValue},
        Count, TopDocs,
    },
    query::{
        AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, Occur, Query,
        RangeQuery, TermQuery,
    },
    schema::{
        Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED,
        STORED, STRING,
    },
    snippet::SnippetGenerator,
    tokenizer::{
        AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
        StopWordFilter, TextAnalyzer, TokenStream,
    },
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Score, Searcher,
    TantivyDocument, Term,
};

const TEXT_TOKENIZER: &str = "memory_text";
/// Prefix expansions tried per query word, the most frequent first.
const MAX_EXPANSIONS: usize = 24;
const PREFIX_WEIGHT: Score = 0.6;
const TAG_WEIGHT: Score = 1.2;
const AUTHOR_WEIGHT: Score = 0.5;
const WRITER_MEMORY: usize = 32 * 1024 * 1024;
/// How much of an entry's text a snippet shows, in characters.
const SNIPPET_CHARS: usize = 160;

/// How far a commit of the index got, stored as its payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The newest entry the index holds (entries are indexed in id order).
    pub last_id: Option<EntryId>,
    /// The last removal (see `MemoryStore::remove`) it applied.
    pub gone_seq: u64,
}

struct Fields {
    id: Field,
    time: Field,
    text: Field,
    tags: Field,
    tag_words: Field,
    author: Field,
    author_words: Field,
    kind: Field,
    agent: Field,
    task: Field,
    message: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        time: b.add_u64_field("time", INDEXED | FAST),
        text: b.add_text_field("text", words.clone()),
        tags: b.add_text_field("tags", STRING),
        tag_words: b.add_text_field("tag_words", words.clone()),
        author: b.add_text_field("author", STRING),
        author_words: b.add_text_field("author_words", words),
        kind: b.add_text_field("kind", STRING),
        agent: b.add_text_field("agent", STRING),
        task: b.add_u64_field("task", INDEXED),
        message: b.add_text_field("message", STRING),
    };
    (b.build(), fields)
}

fn text_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::new(Language::English).expect("tantivy ships English stop words"))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The words of a query before stemming, as the text analyzer sees them.
fn word_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::new(Language::English).expect("tantivy ships English stop words"))
        .build()
}

/// What `open` found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpenReport {
    /// Why the index was rebuilt from sled, if it was.
    pub rebuilt: Option<String>,
    /// Entries added and removals applied to catch up with sled.
    pub caught_up: usize,
    /// Entries in the index after opening.
    pub entries: u64,
    pub millis: u64,
}

/// What a recall asks for, besides its words.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub author: Option<String>,
    pub agent: Option<String>,
    pub kind: Option<String>,
    pub tags: Vec<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub task: Option<u64>,
    pub message: Option<String>,
}

/// The index: a reader for searches, and the one writer (used by the indexer thread only).
pub struct MemoryIndex {
    reader: IndexReader,
    fields: Fields,
    words: TextAnalyzer,
    dir: PathBuf,
}

impl MemoryIndex {
    /// Opens the index in `dir` and brings it level with sled, rebuilding it when it must. Returns the index, its
    /// writer and what was done.
    pub fn open(
        dir: &Path,
        store: &MemoryStore,
    ) -> tantivy::Result<(MemoryIndex, IndexWriter, Watermark, OpenReport)> {
        let started = Instant::now();
        let mut report = OpenReport::default();
        let opened = match try_open(dir) {
            Ok(Some(opened)) => Ok(opened),
            Ok(None) => Err("it did not exist".to_string()),
            Err(e) => Err(format!("it could not be read ({e})")),
        };
        let (index, mut writer, mut mark) = match opened {
            Ok(opened) => opened,
            Err(why) => {
                report.rebuilt = Some(why);
                create(dir)?
            }
        };
        let mut this = MemoryIndex::with(index, dir)?;
        report.caught_up = this.catch_up(&mut writer, store, &mut mark)?;
        let in_index = this.num_docs();
        let in_store = store.count() as u64;
        if in_index != in_store {
            // Something other than a crash got them apart (an index copied from elsewhere, say): start over.
            report.rebuilt = Some(format!(
                "it held {in_index} entries where sled holds {in_store}"
            ));
            drop(writer);
            drop(this);
            let (index, w, m) = create(dir)?;
            writer = w;
            mark = m;
            this = MemoryIndex::with(index, dir)?;
            report.caught_up = this.catch_up(&mut writer, store, &mut mark)?;
        }
        report.entries = this.num_docs();
        report.millis = started.elapsed().as_millis() as u64;
        Ok((this, writer, mark, report))
    }

    fn with(index: Index, dir: &Path) -> tantivy::Result<MemoryIndex> {
        let (_, fields) = schema();
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(MemoryIndex {
            reader,
            fields,
            words: word_analyzer(),
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Adds the entries sled has after `mark` and applies its removals after `mark`, then commits.
    fn catch_up(
        &self,
        writer: &mut IndexWriter,
        store: &MemoryStore,
        mark: &mut Watermark,
    ) -> tantivy::Result<usize> {
        let mut done = 0;
        let mut added = Vec::new();
        for entry in store.oldest_first(mark.last_id) {
            let entry = entry.map_err(store_err)?;
            added.push(entry);
            if added.len() == 10_000 {
                done += added.len();
                self.add(writer, &added)?;
                mark.last_id = added.last().map(|e| e.id);
                added.clear();
            }
        }
        done += added.len();
        self.add(writer, &added)?;
        if let Some(last) = added.last() {
            mark.last_id = Some(last.id);
        }
        for (seq, ids) in store.gone_after(mark.gone_seq).map_err(store_err)? {
            done += ids.len();
            self.remove(writer, &ids);
            mark.gone_seq = seq;
        }
        self.commit(writer, *mark)?;
        store.trim_gone(mark.gone_seq).map_err(store_err)?;
        Ok(done)
    }

    pub fn add(&self, writer: &mut IndexWriter, entries: &[Entry]) -> tantivy::Result<()> {
        let f = &self.fields;
        for entry in entries {
            let mut doc = TantivyDocument::new();
            doc.add_text(f.id, entry.id.to_string());
            doc.add_u64(f.time, entry.at().0);
            doc.add_text(f.text, &entry.text);
            for tag in &entry.tags {
                doc.add_text(f.tags, tag);
                doc.add_text(f.tag_words, tag);
            }
            let author = entry.author.key();
            doc.add_text(f.author_words, entry.author.to_string());
            doc.add_text(f.author, &author);
            if let dreamos_runtime::memory::Author::Person { name, .. } = &entry.author {
                doc.add_text(f.author, name);
            }
            doc.add_text(f.kind, entry.kind.as_str());
            for agent in entry.agents() {
                doc.add_text(f.agent, agent);
            }
            for task in &entry.links.tasks {
                doc.add_u64(f.task, task.0);
            }
            for message in &entry.links.messages {
                doc.add_text(f.message, message.to_string());
            }
            writer.add_document(doc)?;
        }
        Ok(())
    }

    pub fn remove(&self, writer: &mut IndexWriter, ids: &[EntryId]) {
        for id in ids {
            writer.delete_term(Term::from_field_text(self.fields.id, &id.to_string()));
        }
    }

    /// Commits what the writer has, with how far it got, and makes it searchable.
    pub fn commit(&self, writer: &mut IndexWriter, mark: Watermark) -> tantivy::Result<()> {
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&serde_json::to_string(&mark).expect("a watermark is JSON"));
        prepared.commit()?;
        self.reader.reload()
    }

    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// The query for `words` with `filters`: see the module's doc. `None` when no word is left to search for
    /// (every word a stop word, say).
    pub fn query(
        &self,
        searcher: &Searcher,
        words: &str,
        filters: &Filters,
    ) -> Option<BooleanQuery> {
        let f = &self.fields;
        let mut stems = text_analyzer();
        let mut analyzer = self.words.clone();
        let mut seen = BTreeSet::new();
        let mut per_word: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut stream = analyzer.token_stream(words);
        while let Some(token) = stream.next() {
            let word = token.text.clone();
            if !seen.insert(word.clone()) {
                continue;
            }
            let stem = {
                let mut s = stems.token_stream(&word);
                match s.next() {
                    Some(t) => t.text.clone(),
                    None => continue,
                }
            };
            let term = |field: Field, text: &str, weight: Score| -> Box<dyn Query> {
                Box::new(BoostQuery::new(
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, text),
                        IndexRecordOption::WithFreqs,
                    )),
                    weight,
                ))
            };
            let mut alternatives: Vec<Box<dyn Query>> = vec![
                term(f.text, &stem, 1.0),
                term(f.tag_words, &stem, TAG_WEIGHT),
                term(f.author_words, &stem, AUTHOR_WEIGHT),
            ];
            if word.chars().count() >= 3 {
                for expansion in self.expansions(searcher, &[word.as_str(), stem.as_str()], &stem) {
                    alternatives.push(term(f.text, &expansion, PREFIX_WEIGHT));
                }
            }
            per_word.push((
                Occur::Should,
                Box::new(DisjunctionMaxQuery::with_tie_breaker(alternatives, 0.1)),
            ));
        }
        if per_word.is_empty() {
            return None;
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, Box::new(BooleanQuery::new(per_word)))];
        let mut filter = |q: Box<dyn Query>| {
            clauses.push((Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0))));
        };
        let exact = |field: Field, text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, text),
                IndexRecordOption::Basic,
            ))
        };
        if let Some(author) = &filters.author {
            filter(exact(f.author, author));
        }
        if let Some(agent) = &filters.agent {
            filter(exact(f.agent, agent));
        }
        if let Some(kind) = &filters.kind {
            filter(exact(f.kind, kind));
        }
        for tag in &filters.tags {
            filter(exact(f.tags, tag));
        }
        if let Some(message) = &filters.message {
            filter(exact(f.message, message));
        }
        if let Some(task) = filters.task {
            filter(Box::new(TermQuery::new(
                Term::from_field_u64(f.task, task),
                IndexRecordOption::Basic,
            )));
        }
        if filters.since.is_some() || filters.until.is_some() {
            let lower = filters.since.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_u64(f.time, t.0))
            });
            let upper = filters.until.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_u64(f.time, t.0))
            });
            filter(Box::new(RangeQuery::new(lower, upper)));
        }
        Some(BooleanQuery::new(clauses))
    }

    /// Indexed words of the text that begin with one of `prefixes`, other than `stem` itself: the most frequent
    /// first, at most [`MAX_EXPANSIONS`].
    fn expansions(&self, searcher: &Searcher, prefixes: &[&str], stem: &str) -> Vec<String> {
        let mut found: BTreeSet<String> = BTreeSet::new();
        for prefix in prefixes.iter().copied().collect::<BTreeSet<&str>>() {
            let mut upper = str::as_bytes(prefix).to_vec();
            // The first string after every one that begins with the prefix: bump its last byte.
            if let Some(last) = upper.last_mut() {
                *last = last.saturating_add(1);
            }
            for segment in searcher.segment_readers() {
                let Ok(inverted) = segment.inverted_index(self.fields.text) else {
                    continue;
                };
                let Ok(mut stream) = inverted
                    .terms()
                    .range()
                    .ge(str::as_bytes(prefix))
                    .lt(&upper)
                    .into_stream()
                else {
                    continue;
                };
                while stream.advance() {
                    if let Ok(word) = std::str::from_utf8(stream.key()) {
                        if word != stem {
                            found.insert(word.to_string());
                        }
                    }
                    if found.len() > 4 * MAX_EXPANSIONS {
                        break;
                    }
                }
            }
        }
        let mut ranked: Vec<(u64, String)> = found
            .into_iter()
            .map(|w| {
                let df = searcher
                    .doc_freq(&Term::from_field_text(self.fields.text, &w))
                    .unwrap_or(0);
                (df, w)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        ranked.truncate(MAX_EXPANSIONS);
        ranked.into_iter().map(|(_, w)| w).collect()
    }

    /// The best `limit` entries for `query`, by score and then the newest first, with the number that matched.
    pub fn top(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        limit: usize,
    ) -> tantivy::Result<(Vec<(Score, EntryId)>, usize)> {
        let collector = TopDocs::with_limit(limit.max(1)).order_by((
            (SortBySimilarityScore, Order::Desc),
            (SortByStaticFastValue::<u64>::for_field("time"), Order::Desc),
        ));
        let (top, count) = searcher.search(query, &(collector, Count))?;
        let mut hits = Vec::with_capacity(top.len());
        for ((score, _), address) in top {
            if let Some(id) = self.id_of(searcher, address)? {
                hits.push((score, id));
            }
        }
        Ok((hits, count))
    }

    fn id_of(&self, searcher: &Searcher, address: DocAddress) -> tantivy::Result<Option<EntryId>> {
        let doc: TantivyDocument = searcher.doc(address)?;
        Ok(doc
            .get_first(self.fields.id)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok()))
    }

    /// A snippet maker for the text field's terms of `query`.
    pub fn snippets(&self, searcher: &Searcher, query: &dyn Query) -> Option<SnippetGenerator> {
        let mut generator = SnippetGenerator::create(searcher, query, self.fields.text).ok()?;
        generator.set_max_num_chars(SNIPPET_CHARS);
        Some(generator)
    }

    /// Every entry id (for tests: the index holds what sled holds).
    pub fn all_ids(&self) -> tantivy::Result<BTreeSet<String>> {
        let searcher = self.searcher();
        let top = searcher.search(
            &AllQuery,
            &TopDocs::with_limit(searcher.num_docs().max(1) as usize).order_by_score(),
        )?;
        let mut ids = BTreeSet::new();
        for (_, address) in top {
            if let Some(id) = self.id_of(&searcher, address)? {
                ids.insert(id.to_string());
            }
        }
        Ok(ids)
    }
}

/// The text of `entry` as a snippet: the best fragment for the query, matched words marked `**`.
pub fn snippet(generator: Option<&SnippetGenerator>, text: &str) -> String {
    let clipped = || {
        let mut s: String = text.chars().take(SNIPPET_CHARS).collect();
        if s.len() < text.len() {
            s.push('…');
        }
        s
    };
    let Some(generator) = generator else {
        return clipped();
    };
    let mut snippet = generator.snippet(text);
    if snippet.is_empty() {
        return clipped();
    }
    snippet.set_snippet_prefix_postfix("**", "**");
    let fragment = snippet.fragment();
    let mut out = String::with_capacity(fragment.len() + 16);
    let mut at = 0;
    for range in snippet.highlighted() {
        out.push_str(&fragment[at..range.start]);
        out.push_str("**");
        out.push_str(&fragment[range.clone()]);
        out.push_str("**");
        at = range.end;
    }
    out.push_str(&fragment[at..]);
    let range = snippet.fragment_range();
    let mut shown = String::new();
    if range.start > 0 {
        shown.push('…');
    }
    shown.push_str(out.trim());
    if range.end < text.len() {
        shown.push('…');
    }
    shown
}

fn register(index: &Index) {
    index.tokenizers().register(TEXT_TOKENIZER, text_analyzer());
}

/// Opens an existing index: `None` when there is none; an error when it cannot be trusted.
fn try_open(dir: &Path) -> tantivy::Result<Option<(Index, IndexWriter, Watermark)>> {
    if !dir.join("meta.json").exists() {
        return Ok(None);
    }
    let index = Index::open_in_dir(dir)?;
    let (expected, _) = schema();
    if index.schema() != expected {
        return Err(tantivy::TantivyError::SchemaError(
            "its schema is not this version's".into(),
        ));
    }
    let corrupt = index.validate_checksum()?;
    if !corrupt.is_empty() {
        return Err(tantivy::TantivyError::SystemError(format!(
            "{} of its files failed their checksum",
            corrupt.len()
        )));
    }
    register(&index);
    let metas = index.load_metas()?;
    let mark = match metas.payload.as_deref() {
        Some(payload) => serde_json::from_str(payload).map_err(|e| {
            tantivy::TantivyError::SystemError(format!("its commit payload is unreadable: {e}"))
        })?,
        None => Watermark::default(),
    };
    let writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
    Ok(Some((index, writer, mark)))
}

/// A new, empty index in `dir`, replacing whatever was there.
fn create(dir: &Path) -> tantivy::Result<(Index, IndexWriter, Watermark)> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let (schema, _) = schema();
    let index = Index::create_in_dir(dir, schema)?;
    register(&index);
    let writer = index.writer_with_num_threads(1, WRITER_MEMORY)?;
    Ok((index, writer, Watermark::default()))
}

fn store_err(e: dreamos_runtime::Error) -> tantivy::TantivyError {
    tantivy::TantivyError::SystemError(format!("reading memory entries from sled: {e}"))
}
