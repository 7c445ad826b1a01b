//! Search: turn a parsed query into a Tantivy query that selects candidates, then verify every candidate against
//! its stored text and report the matching lines.
//!
//! The index only ever narrows the search. Identifier terms are exact at the term level, and literal and regex
//! terms are answered by trigrams, which over-approximate; either way a line is reported only after the real text
//! was checked, so a hit is never a guess. Queries with identifiers are ranked (BM25 over `file` documents, with
//! boosts for files that define the identifier or whose path contains it) and verify whole files; pure text queries
//! stream candidate chunks (see [`super::text`]) in index order, verify only those, and stop as soon as enough
//! verified lines are found. A query of several terms still asks that every term match somewhere in the file: the
//! candidate chunks of one file are verified together.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use memchr::memmem;
use rayon::prelude::*;
use tantivy::collector::TopDocs;
use tantivy::index::SegmentId;
use tantivy::query::{
    AllQuery, BitSetDocSet, BooleanQuery, BoostQuery, ConstScoreQuery, ConstScorer, EmptyQuery,
    EnableScoring, Explanation, Occur, Query, Scorer, TermQuery, TermSetQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{
    BitSet, DocAddress, DocId, DocSet, Score, Searcher, SegmentReader, TantivyDocument, Term,
    TERMINATED,
};

use super::ascii::AsciiFinder;
use super::schema::{Fields, FileDef, KIND_CHUNK, KIND_FILE};
use super::text::{self, ChunkColumns, FileLines, LineIndex};
use super::tokenizer::{
    for_each_code_token, has_code_token, lowercase, may_have_token, MAX_IDENTIFIER_BYTES,
};
use super::trigram::TrigramQuery;
use super::{stored_str, tantivy_err, Budget, Inner, SearchHit, SearchOptions};
use crate::error::{Error, Result};
use crate::model::Lang;
use crate::query::{self, PathPattern, Term as QTerm};

/// How much a file that defines a searched identifier outranks one that only mentions it.
const DEF_BOOST: f32 = 4.0;
/// How much a file whose path contains a searched identifier outranks one that does not.
const PATH_BOOST: f32 = 2.0;
/// Ranked search reads at least this many of the best files before it may stop at `limit` lines.
const MIN_RANKED_FILES: usize = 4;
/// The most files one round of ranked search asks Tantivy for.
const MAX_BATCH: usize = 1 << 14;
/// Added to a line's score when it is the definition of a searched name, so definitions come before mentions.
const DEF_LINE_BONUS: f32 = 100.0;
/// Added again when the definition's whole name is a searched word ignoring case (the field `searcher` for
/// `Searcher`), and twice when it is the word exactly: `struct Searcher` before it, `SearcherBuilder` after.
const EXACT_NAME_BONUS: f32 = 30.0;

/// One term, ready to check against text.
enum Matcher {
    Ident(String),
    Symbol(String),
    Literal { needle: String, lower: String },
    Regex(regex::Regex),
}

/// What the filters of a query (and the search options) allow; each inner list is a set of alternatives.
struct Filters {
    repos: Vec<Vec<String>>,
    langs: Vec<Vec<Lang>>,
    paths: Vec<Vec<PathPattern>>,
}

/// Lines a matcher goes through between two looks at the clock.
const LINES_PER_CHECK: usize = 1024;

/// Keeps a query within its [`Budget`]: the time it started, the text it has verified so far.
pub(crate) struct Meter<'b> {
    budget: &'b Budget,
    deadline: Option<Instant>,
    /// Shared by the threads that verify candidates in parallel (see [`verify_in_order`]).
    scanned: AtomicU64,
}

impl<'b> Meter<'b> {
    pub(crate) fn start(budget: &'b Budget) -> Meter<'b> {
        Meter {
            budget,
            deadline: budget.timeout.map(|t| Instant::now() + t),
            scanned: AtomicU64::new(0),
        }
    }

    /// Fails when the query was cancelled or is past its deadline.
    pub(crate) fn check(&self) -> Result<()> {
        if self.budget.cancelled() {
            return Err(Error::Cancelled);
        }
        if let (Some(deadline), Some(limit)) = (self.deadline, self.budget.timeout) {
            if Instant::now() >= deadline {
                return Err(Error::Timeout { limit });
            }
        }
        Ok(())
    }

    /// Counts `bytes` more of verified text, then [`Meter::check`]s.
    fn charge(&self, bytes: usize) -> Result<()> {
        let scanned = self
            .scanned
            .fetch_add(bytes as u64, Ordering::Relaxed)
            .saturating_add(bytes as u64);
        if let Some(max) = self.budget.max_scan_bytes {
            if scanned > max {
                return Err(Error::TooExpensive(format!(
                    "it would read more than {max} bytes of code, the limit for one query ([scanner] query_max_scan_bytes); narrow it with a longer literal, lang:, path: or repo:"
                )));
            }
        }
        self.check()
    }
}

pub(crate) fn search(inner: &Inner, text: &str, opts: &SearchOptions) -> Result<Vec<SearchHit>> {
    let meter = Meter::start(&opts.budget);
    let q = query::parse(text)?;
    if let Some(max) = opts.budget.max_regex_states {
        for term in &q.terms {
            if let QTerm::Regex(re) = term {
                let states = query::regex_states(re, q.case_sensitive)?;
                if states > max {
                    return Err(Error::TooExpensive(format!(
                        "/{}/ expands to {states} states and the limit is {max} ([scanner] query_max_regex_states); use smaller repetition counts, such as a{{1,100}} instead of a{{4000}}",
                        query::clip(re)
                    )));
                }
            }
        }
    }
    let mut filters = Filters {
        repos: vec![],
        langs: vec![],
        paths: vec![],
    };
    if !q.repos.is_empty() {
        filters.repos.push(q.repos.clone());
    }
    if !q.langs.is_empty() {
        filters.langs.push(q.langs.clone());
    }
    if !q.paths.is_empty() {
        filters.paths.push(q.paths.clone());
    }
    if let Some(repo) = &opts.repo {
        super::check_repo_name(repo)?;
        filters.repos.push(vec![repo.clone()]);
    }
    if let Some(lang) = opts.lang {
        filters.langs.push(vec![lang]);
    }
    if let Some(path) = &opts.path {
        filters.paths.push(vec![PathPattern::new(path)?]);
    }
    if opts.limit == 0 {
        return Ok(Vec::new());
    }
    let searcher = inner.reader.searcher();
    let f = &inner.fields;
    for group in &filters.repos {
        for repo in group {
            if searcher
                .doc_freq(&Term::from_field_text(f.repo, repo))
                .map_err(tantivy_err("looking up a repository"))?
                == 0
            {
                return Err(Error::UnknownRepo(repo.clone()));
            }
        }
    }

    // The filters, which apply alike to `file` and `chunk` documents (both carry repo, lang and path).
    let mut filter: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for group in &filters.repos {
        filter.push((
            Occur::Must,
            any_of(f.repo, group.iter().map(String::as_str)),
        ));
    }
    for group in &filters.langs {
        filter.push((Occur::Must, any_of(f.lang, group.iter().map(|l| l.name()))));
    }
    if !filters.paths.is_empty() {
        let paths = matching_paths(&searcher, f.path, &filters.paths)?;
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let terms: Vec<Term> = paths
            .iter()
            .map(|p| Term::from_field_text(f.path, p))
            .collect();
        filter.push((
            Occur::Must,
            Box::new(ConstScoreQuery::new(
                Box::new(TermSetQuery::new(terms)),
                0.0,
            )),
        ));
    }

    let scored = q
        .terms
        .iter()
        .any(|t| matches!(t, QTerm::Symbol(_)) || is_indexed_ident(t));
    meter.check()?;
    let cols = ChunkColumns::open(&searcher)?;
    let mut hits = Vec::new();
    if scored {
        // Ranked over `file` documents. Text terms have no trigrams there (they are on the chunks), so they narrow
        // nothing here and are only verified; the identifiers select the files.
        let mut clauses = clone_clauses(&filter);
        clauses.push((Occur::Must, filter_term(f.kind, KIND_FILE)));
        let mut matchers = Vec::new();
        let mut text_trigrams = Vec::new();
        for term in &q.terms {
            match term {
                QTerm::Ident(t) if is_indexed_ident(term) => {
                    clauses.push((Occur::Must, ident_query(f, t)));
                    matchers.push(Matcher::Ident(t.clone()));
                }
                QTerm::Symbol(t) => {
                    clauses.push((Occur::Must, scored_term(f.def_tokens, t)));
                    matchers.push(Matcher::Symbol(t.clone()));
                }
                // Overlong identifiers are not indexed as tokens (see the tokenizer), so they are searched as text.
                QTerm::Ident(_) | QTerm::Literal(_) | QTerm::Regex(_) => {
                    let (trigrams, matcher) = text_term(term, q.case_sensitive)?;
                    text_trigrams.push(trigrams);
                    matchers.push(matcher);
                }
            }
        }
        if let Some(files) = files_with_chunks(&searcher, f, &cols, &text_trigrams)? {
            clauses.push((Occur::Must, Box::new(files)));
        }
        let verifier = Verifier::new(f, &cols, &matchers, q.case_sensitive, &meter, &q.words);
        ranked(
            &searcher,
            &BooleanQuery::new(clauses),
            &verifier,
            opts.limit,
            &mut hits,
        )?;
        hits.sort_by(|a: &SearchHit, b: &SearchHit| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| (&a.repo, &a.path, a.line).cmp(&(&b.repo, &b.path, b.line)))
        });
        for hit in &mut hits {
            hit.matched = super::LineMatch::Identifier;
        }
        hits.truncate(opts.limit);
        if hits.len() < opts.limit && q.terms.iter().any(|t| matches!(t, QTerm::Ident(_))) {
            let fill = substring_fill(&searcher, f, &cols, &filter, &q, &meter, opts.limit, &hits)?;
            hits.extend(fill);
        }
    } else {
        let mut matchers = Vec::new();
        let mut clauses = Vec::new();
        for term in &q.terms {
            let (trigrams, matcher) = text_term(term, q.case_sensitive)?;
            clauses.push(trigram_query(f.trigrams, &trigrams));
            matchers.push(matcher);
        }
        let verifier = Verifier::new(f, &cols, &matchers, q.case_sensitive, &meter, &q.words);
        streamed_chunks(
            &searcher, &filter, clauses, &verifier, opts.limit, &mut hits,
        )?;
        hits.sort_by(|a, b| (&a.repo, &a.path, a.line).cmp(&(&b.repo, &b.path, b.line)));
    }
    hits.truncate(opts.limit);
    Ok(hits)
}

/// True for an identifier the index has as a token (so a `file` document's postings can select it).
fn is_indexed_ident(term: &QTerm) -> bool {
    matches!(term, QTerm::Ident(t) if t.len() <= MAX_IDENTIFIER_BYTES)
}

fn clone_clauses(clauses: &[(Occur, Box<dyn Query>)]) -> Vec<(Occur, Box<dyn Query>)> {
    clauses.iter().map(|(o, q)| (*o, q.box_clone())).collect()
}

/// Lines where the query's identifiers appear inside longer words (as substrings, verified), none of `found`: at
/// most `limit - found.len()`, in index order, each scored below every identifier hit. Other terms (symbols,
/// literals, regexes) still apply as they are.
#[allow(clippy::too_many_arguments)]
fn substring_fill(
    searcher: &Searcher,
    f: &Fields,
    cols: &ChunkColumns,
    filter: &[(Occur, Box<dyn Query>)],
    q: &query::Query,
    meter: &Meter<'_>,
    limit: usize,
    found: &[SearchHit],
) -> Result<Vec<SearchHit>> {
    let mut matchers = Vec::new();
    let mut text_clauses = Vec::new();
    let mut symbol_clauses = Vec::new();
    for term in &q.terms {
        match term {
            QTerm::Symbol(t) => {
                symbol_clauses.push((Occur::Must, filter_term(f.def_tokens, t)));
                matchers.push(Matcher::Symbol(t.clone()));
            }
            // Identifiers are looked for as text here: that is the fill.
            QTerm::Ident(_) | QTerm::Literal(_) | QTerm::Regex(_) => {
                let (trigrams, matcher) = text_term(term, q.case_sensitive)?;
                text_clauses.push(trigram_query(f.trigrams, &trigrams));
                matchers.push(matcher);
            }
        }
    }
    let verifier = Verifier::new(f, cols, &matchers, q.case_sensitive, meter, &q.words);
    let seen: BTreeSet<(&str, &str, u32)> = found
        .iter()
        .map(|h| (h.repo.as_str(), h.path.as_str(), h.line))
        .collect();
    let mut lines = Vec::new();
    // Lines already found as identifiers come back too: ask for enough to fill the rest after dropping them.
    let want = limit.saturating_add(found.len());
    if symbol_clauses.is_empty() {
        streamed_chunks(searcher, filter, text_clauses, &verifier, want, &mut lines)?;
    } else {
        // A symbol term selects files by their definitions, which only `file` documents know: walk those files and
        // verify each whole.
        let mut clauses = clone_clauses(filter);
        clauses.push((Occur::Must, filter_term(f.kind, KIND_FILE)));
        clauses.extend(symbol_clauses);
        streamed_files(
            searcher,
            &BooleanQuery::new(clauses),
            &verifier,
            want,
            &mut lines,
        )?;
    }
    lines.sort_by(|a, b| (&a.repo, &a.path, a.line).cmp(&(&b.repo, &b.path, b.line)));
    let floor = found.iter().map(|h| h.score).fold(f32::INFINITY, f32::min);
    let below = if floor.is_finite() {
        floor.min(0.0) - 1.0
    } else {
        -1.0
    };
    Ok(lines
        .into_iter()
        .filter(|h| !seen.contains(&(h.repo.as_str(), h.path.as_str(), h.line)))
        .take(limit.saturating_sub(found.len()))
        .map(|mut h| {
            h.matched = super::LineMatch::Substring;
            h.score = below;
            h
        })
        .collect())
}

/// A term searched as text (an identifier or literal as a substring, or a regex): the trigrams a line it matches
/// must hold, and the matcher that verifies candidates.
fn text_term(term: &QTerm, case_sensitive: bool) -> Result<(TrigramQuery, Matcher)> {
    Ok(match term {
        QTerm::Regex(re) => (
            TrigramQuery::for_regex(re, case_sensitive)?,
            Matcher::Regex(query::build_regex(re, case_sensitive)?),
        ),
        QTerm::Ident(s) | QTerm::Literal(s) | QTerm::Symbol(s) => (
            TrigramQuery::for_literal(s),
            Matcher::Literal {
                needle: s.clone(),
                lower: lowercase(s),
            },
        ),
    })
}

/// The `file` documents that have a candidate chunk for every one of `terms` (the trigram requirements of a ranked
/// query's text terms), as a filter for the ranked query: the identifiers select and rank files, and this keeps out,
/// before any is read, the files where some text term cannot match. `None` when no term requires any trigram, or when
/// more than [`MAX_FILE_SET_CHUNKS`] candidate chunks would have to be walked (then the text terms are only verified).
fn files_with_chunks(
    searcher: &Searcher,
    f: &Fields,
    cols: &ChunkColumns,
    terms: &[TrigramQuery],
) -> Result<Option<FileSet>> {
    let narrowing: Vec<&TrigramQuery> = terms
        .iter()
        .filter(|t| !matches!(t, TrigramQuery::All))
        .collect();
    if narrowing.is_empty() {
        return Ok(None);
    }
    let mut weights = Vec::with_capacity(narrowing.len());
    for tq in narrowing {
        let query = BooleanQuery::new(vec![
            (Occur::Must, filter_term(f.kind, KIND_CHUNK)),
            (Occur::Must, trigram_query(f.trigrams, tq)),
        ]);
        weights.push(
            query
                .weight(EnableScoring::disabled_from_searcher(searcher))
                .map_err(tantivy_err("preparing a search"))?,
        );
    }
    let mut walked = 0usize;
    let mut sets = HashMap::new();
    for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        let ord = segment_ord(ord)?;
        let alive = segment.alive_bitset();
        let mut files: Option<Vec<DocId>> = None;
        for weight in &weights {
            let mut scorer = weight
                .scorer(segment, 1.0)
                .map_err(tantivy_err("searching"))?;
            let mut these: Vec<DocId> = Vec::new();
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                walked += 1;
                if walked > MAX_FILE_SET_CHUNKS {
                    return Ok(None);
                }
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    if let Some(file) = cols.file_of(DocAddress::new(ord, doc)) {
                        // A file's chunks are consecutive, so a file comes up in one run.
                        if these.last() != Some(&file.doc_id) {
                            these.push(file.doc_id);
                        }
                    }
                }
                doc = scorer.advance();
            }
            files = Some(match files {
                None => these,
                Some(before) => {
                    let keep: BTreeSet<DocId> = these.into_iter().collect();
                    before.into_iter().filter(|d| keep.contains(d)).collect()
                }
            });
        }
        sets.insert(segment.segment_id(), files.unwrap_or_default());
    }
    Ok(Some(FileSet(std::sync::Arc::new(sets))))
}

/// The most candidate chunks [`files_with_chunks`] walks before it gives up narrowing (a text term as common as
/// `fn`): walking is cheap, but past this the filter would cost more than the verification it saves.
const MAX_FILE_SET_CHUNKS: usize = 100_000;

/// A filter of `file` documents given as a sorted list per segment; it adds nothing to the score.
#[derive(Clone, Debug)]
struct FileSet(std::sync::Arc<HashMap<SegmentId, Vec<DocId>>>);

impl Query for FileSet {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for FileSet {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut set = BitSet::with_max_value(reader.max_doc());
        for &doc in self.0.get(&reader.segment_id()).into_iter().flatten() {
            set.insert(doc);
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(set), 0.0)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let listed = self
            .0
            .get(&reader.segment_id())
            .is_some_and(|docs| docs.binary_search(&doc).is_ok());
        if listed {
            Ok(Explanation::new(
                "a file where every text term may match",
                0.0,
            ))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} is not a file where every text term may match"
            )))
        }
    }
}

/// A filter clause: the term must be there, and it adds nothing to the score.
fn filter_term(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(
        Box::new(TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        )),
        0.0,
    ))
}

/// A filter clause accepting any of `values`.
fn any_of<'a>(field: Field, values: impl Iterator<Item = &'a str>) -> Box<dyn Query> {
    let terms: Vec<Term> = values.map(|v| Term::from_field_text(field, v)).collect();
    Box::new(ConstScoreQuery::new(
        Box::new(TermSetQuery::new(terms)),
        0.0,
    ))
}

fn scored_term(field: Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::WithFreqs,
    ))
}

/// An identifier must be among the content's tokens; defining it or having it in the path ranks a file higher.
fn ident_query(f: &Fields, t: &str) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, scored_term(f.content, t)),
        (
            Occur::Should,
            Box::new(BoostQuery::new(scored_term(f.def_tokens, t), DEF_BOOST)),
        ),
        (
            Occur::Should,
            Box::new(BoostQuery::new(scored_term(f.path_tokens, t), PATH_BOOST)),
        ),
    ]))
}

/// Turns a trigram requirement into a Tantivy query that does not affect scores.
fn trigram_query(field: Field, tq: &TrigramQuery) -> Box<dyn Query> {
    fn build(field: Field, tq: &TrigramQuery) -> Option<Box<dyn Query>> {
        match tq {
            TrigramQuery::All => None,
            TrigramQuery::Nothing => Some(Box::new(EmptyQuery)),
            TrigramQuery::Trigram(t) => Some(Box::new(TermQuery::new(
                Term::from_field_text(field, t),
                IndexRecordOption::Basic,
            ))),
            TrigramQuery::And(items) => {
                let clauses: Vec<(Occur, Box<dyn Query>)> = items
                    .iter()
                    .filter_map(|i| build(field, i))
                    .map(|q| (Occur::Must, q))
                    .collect();
                (!clauses.is_empty())
                    .then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>)
            }
            TrigramQuery::Or(items) => {
                let mut clauses = Vec::new();
                for item in items {
                    // An alternative without requirement makes the whole disjunction unconstrained.
                    clauses.push((Occur::Should, build(field, item)?));
                }
                Some(Box::new(BooleanQuery::new(clauses)))
            }
        }
    }
    match build(field, tq) {
        Some(q) => Box::new(ConstScoreQuery::new(q, 0.0)),
        // No trigram can be required (a short needle, `\w+`): every file that passes the filters is a candidate.
        None => Box::new(tantivy::query::AllQuery),
    }
}

/// The paths in the index that pass every path filter group.
fn matching_paths(
    searcher: &Searcher,
    field: Field,
    groups: &[Vec<PathPattern>],
) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment
            .inverted_index(field)
            .map_err(tantivy_err("reading paths"))?;
        let mut stream = inverted
            .terms()
            .stream()
            .map_err(|e| Error::Corrupt(format!("cannot read the path dictionary: {e}")))?;
        while stream.advance() {
            let Ok(path) = std::str::from_utf8(stream.key()) else {
                continue;
            };
            if groups.iter().all(|g| g.iter().any(|p| p.matches(path))) {
                out.insert(path.to_string());
            }
        }
    }
    Ok(out)
}

/// Scored search: verify the best files in score order until enough lines are found or files run out.
///
/// Files that define a searched name score highest (see [`ident_query`]), so the first few files hold the
/// definitions; after [`MIN_RANKED_FILES`] files, reading stops as soon as `limit` lines are in hand, because
/// every file read costs a document-store decompression.
fn ranked(
    searcher: &Searcher,
    query: &BooleanQuery,
    verifier: &Verifier<'_>,
    limit: usize,
    hits: &mut Vec<SearchHit>,
) -> Result<()> {
    let mut offset = 0;
    // Tantivy allocates a buffer of twice the batch size, so a huge `limit` must not become a huge batch.
    let mut batch = limit.saturating_add(16).min(MAX_BATCH);
    let mut files = 0;
    let verify = |&(score, addr): &(f32, DocAddress), hits: &mut Vec<SearchHit>| {
        verifier.file(searcher, addr, score, hits)
    };
    loop {
        let top = searcher
            .search(
                query,
                &TopDocs::with_limit(batch)
                    .and_offset(offset)
                    .order_by_score(),
            )
            .map_err(tantivy_err("searching"))?;
        let stopped = verify_in_order(&top, &mut files, hits, &verify, |hits, files| {
            hits >= limit && files >= MIN_RANKED_FILES
        })?;
        if stopped || top.len() < batch {
            return Ok(());
        }
        offset += batch;
        batch = batch.saturating_mul(4).min(MAX_BATCH);
    }
}

/// Unscored search over whole files: walk the `file` documents `query` selects in index order and stop at `limit`
/// verified lines.
fn streamed_files(
    searcher: &Searcher,
    query: &BooleanQuery,
    verifier: &Verifier<'_>,
    limit: usize,
    hits: &mut Vec<SearchHit>,
) -> Result<()> {
    let weight = query
        .weight(EnableScoring::disabled_from_searcher(searcher))
        .map_err(tantivy_err("preparing a search"))?;
    let mut files = 0;
    let mut pending: Vec<(f32, DocAddress)> = Vec::new();
    let done = |hits: usize, _files: usize| hits >= limit;
    let verify = |&(score, addr): &(f32, DocAddress), hits: &mut Vec<SearchHit>| {
        verifier.file(searcher, addr, score, hits)
    };
    for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        let ord = segment_ord(ord)?;
        let mut scorer = weight
            .scorer(segment, 1.0)
            .map_err(tantivy_err("searching"))?;
        let alive = segment.alive_bitset();
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                pending.push((0.0, DocAddress::new(ord, doc)));
                // One at a time while few files were read, then a chunk at a time (see `verify_in_order`).
                if pending.len() >= chunk_len(files) {
                    if verify_in_order(&pending, &mut files, hits, &verify, done)? {
                        return Ok(());
                    }
                    pending.clear();
                }
            }
            doc = scorer.advance();
        }
    }
    verify_in_order(&pending, &mut files, hits, &verify, done)?;
    Ok(())
}

fn segment_ord(ord: usize) -> Result<u32> {
    u32::try_from(ord).map_err(|_| Error::Corrupt("too many segments".to_string()))
}

/// Terms beyond this many in one query are taken as present in every candidate chunk (they are still verified).
const MASK_TERMS: usize = 64;

/// The candidate chunks of one file, in order, each with the terms whose trigrams it holds (bit `i`: term `i`).
#[derive(Default)]
struct ChunkGroup {
    chunks: Vec<(DocAddress, u64)>,
}

impl ChunkGroup {
    /// True when every term has a candidate chunk in this file, so the file may match.
    fn may_match(&self, terms: usize) -> bool {
        let all = if terms >= MASK_TERMS {
            u64::MAX
        } else {
            (1u64 << terms) - 1
        };
        self.chunks.iter().fold(0, |acc, (_, mask)| acc | mask) & all == all
    }
}

/// Unscored search over chunks: walk the chunks that hold the trigrams of some term (`terms`, one trigram clause per
/// term, all of which must match in a file) and pass `filter`, in index order, file by file, and stop at `limit`
/// verified lines.
///
/// With one term a candidate chunk is simply a chunk that term may match. With several, a file is a candidate when
/// each term has a candidate chunk in it, and only those chunks are read: any line a term matches lies in a chunk
/// that holds the term's trigrams, so this finds every line a whole-file search would.
fn streamed_chunks(
    searcher: &Searcher,
    filter: &[(Occur, Box<dyn Query>)],
    terms: Vec<Box<dyn Query>>,
    verifier: &Verifier<'_>,
    limit: usize,
    hits: &mut Vec<SearchHit>,
) -> Result<()> {
    let f = verifier.fields;
    let scoring = EnableScoring::disabled_from_searcher(searcher);
    let any_term: Box<dyn Query> = match terms.len() {
        0 => Box::new(AllQuery),
        1 => terms[0].box_clone(),
        _ => Box::new(BooleanQuery::new(
            terms
                .iter()
                .map(|t| (Occur::Should, t.box_clone()))
                .collect(),
        )),
    };
    let mut clauses = clone_clauses(filter);
    clauses.push((Occur::Must, filter_term(f.kind, KIND_CHUNK)));
    clauses.push((Occur::Must, any_term));
    let weight = BooleanQuery::new(clauses)
        .weight(scoring)
        .map_err(tantivy_err("preparing a search"))?;
    // With several terms, one scorer per term says which of them each candidate chunk may match.
    let term_weights = if terms.len() > 1 {
        terms
            .iter()
            .take(MASK_TERMS)
            .map(|t| t.weight(EnableScoring::disabled_from_searcher(searcher)))
            .collect::<tantivy::Result<Vec<_>>>()
            .map_err(tantivy_err("preparing a search"))?
    } else {
        Vec::new()
    };
    let cols = verifier.cols;
    let mut files = 0;
    let mut pending: Vec<ChunkGroup> = Vec::new();
    let mut group = ChunkGroup::default();
    let done = |hits: usize, _files: usize| hits >= limit;
    let verify = |g: &ChunkGroup, hits: &mut Vec<SearchHit>| verifier.chunks(searcher, g, hits);
    // Files are verified as their groups complete: one at a time while few were read, then a chunk of them at a
    // time (see `verify_in_order`).
    let flush = |group: &mut ChunkGroup,
                 pending: &mut Vec<ChunkGroup>,
                 files: &mut usize,
                 hits: &mut Vec<SearchHit>,
                 last: bool|
     -> Result<bool> {
        let g = std::mem::take(group);
        if !g.chunks.is_empty() && g.may_match(terms.len()) {
            pending.push(g);
        }
        if !pending.is_empty() && (last || pending.len() >= chunk_len(*files)) {
            let stopped = verify_in_order(pending, files, hits, &verify, done)?;
            pending.clear();
            return Ok(stopped);
        }
        Ok(false)
    };
    for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        let ord = segment_ord(ord)?;
        let mut scorer = weight
            .scorer(segment, 1.0)
            .map_err(tantivy_err("searching"))?;
        let mut term_scorers: Vec<Box<dyn Scorer>> = term_weights
            .iter()
            .map(|w| w.scorer(segment, 1.0))
            .collect::<tantivy::Result<_>>()
            .map_err(tantivy_err("searching"))?;
        let alive = segment.alive_bitset();
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                let mut mask = if term_scorers.is_empty() { u64::MAX } else { 0 };
                for (i, ts) in term_scorers.iter_mut().enumerate() {
                    let at = if ts.doc() < doc {
                        ts.seek(doc)
                    } else {
                        ts.doc()
                    };
                    if at == doc {
                        mask |= 1 << i;
                    }
                }
                let addr = DocAddress::new(ord, doc);
                let same = group
                    .chunks
                    .last()
                    .is_some_and(|&(prev, _)| cols.same_file(prev, addr));
                if !same && flush(&mut group, &mut pending, &mut files, hits, false)? {
                    return Ok(());
                }
                group.chunks.push((addr, mask));
            }
            doc = scorer.advance();
        }
    }
    flush(&mut group, &mut pending, &mut files, hits, true)?;
    Ok(())
}

/// Candidate files verified one after another before any are verified in parallel. Most queries need no more,
/// and a one-shot tool (`dreamos search`) then starts no thread.
const SERIAL_FILES: usize = 32;

/// Candidate files verified together, in parallel, once [`SERIAL_FILES`] were read one by one.
const PARALLEL_CHUNK: usize = 64;

/// How many candidates to gather before verifying, when `files` were verified so far.
fn chunk_len(files: usize) -> usize {
    if parallel_pool(files).is_some() {
        PARALLEL_CHUNK
    } else {
        1
    }
}

/// The pool to verify on once `files` were verified one by one; `None` while they are fewer than [`SERIAL_FILES`]
/// or on one core.
fn parallel_pool(files: usize) -> Option<&'static rayon::ThreadPool> {
    // The files are counted first: asking for the pool starts its threads, which a query that stops within
    // `SERIAL_FILES` files (most do, and every one-shot tool's) must not pay for.
    if files < SERIAL_FILES {
        return None;
    }
    verify_pool()
}

/// The threads that verify candidates in parallel: one per core, started on first use; none on one core. Apart
/// from rayon's global pool, so that a search never queues behind an indexing run's parsing.
fn verify_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("dreamos-verify-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Verifies `candidates` (a file each) into `hits` exactly as calling `verify` on each in turn would, stopping
/// before the first file at which `done(hits, files)` holds (`files` counts the files verified so far, over calls).
/// After [`SERIAL_FILES`] files the rest are verified a chunk at a time on [`verify_pool`]; their lines are taken in
/// candidate order, so the answer is the same as serial verification's, and a file verified past the stop is only
/// discarded work. Returns true when `done` stopped it.
fn verify_in_order<U: Sync>(
    candidates: &[U],
    files: &mut usize,
    hits: &mut Vec<SearchHit>,
    verify: &(dyn Fn(&U, &mut Vec<SearchHit>) -> Result<()> + Sync),
    done: impl Fn(usize, usize) -> bool,
) -> Result<bool> {
    let mut rest = candidates;
    while let Some(first) = rest.first() {
        if done(hits.len(), *files) {
            return Ok(true);
        }
        let Some(pool) = parallel_pool(*files).filter(|_| rest.len() > 1) else {
            verify(first, hits)?;
            *files += 1;
            rest = &rest[1..];
            continue;
        };
        let (chunk, after) = rest.split_at(rest.len().min(PARALLEL_CHUNK));
        let found: Vec<Result<Vec<SearchHit>>> = pool.install(|| {
            chunk
                .par_iter()
                .map(|candidate| {
                    let mut lines = Vec::new();
                    verify(candidate, &mut lines)?;
                    Ok(lines)
                })
                .collect()
        });
        for lines in found {
            if done(hits.len(), *files) {
                return Ok(true);
            }
            hits.extend(lines?);
            *files += 1;
        }
        rest = after;
    }
    Ok(done(hits.len(), *files))
}

/// Checks candidates against the real text.
struct Verifier<'a> {
    fields: &'a Fields,
    cols: &'a ChunkColumns,
    matchers: &'a [Matcher],
    /// [`ascii_finders`] of the matchers.
    finders: Vec<Option<AsciiFinder>>,
    case_sensitive: bool,
    meter: &'a Meter<'a>,
    /// The query's identifiers as typed.
    words: &'a [String],
    /// True when some term looks at the file's definitions (identifiers and symbols).
    needs_defs: bool,
}

/// One piece of a file's text being verified: a chunk, or the whole text.
struct Piece {
    /// The file's 0-based line the piece starts at.
    first_line: usize,
    text: String,
    index: LineIndex,
}

impl Piece {
    fn new(first_line: usize, text: String) -> Piece {
        let index = LineIndex::new(&text);
        Piece {
            first_line,
            text,
            index,
        }
    }
}

impl<'a> Verifier<'a> {
    fn new(
        fields: &'a Fields,
        cols: &'a ChunkColumns,
        matchers: &'a [Matcher],
        case_sensitive: bool,
        meter: &'a Meter<'a>,
        words: &'a [String],
    ) -> Verifier<'a> {
        Verifier {
            fields,
            cols,
            matchers,
            finders: ascii_finders(matchers, case_sensitive),
            case_sensitive,
            meter,
            words,
            needs_defs: matchers
                .iter()
                .any(|m| matches!(m, Matcher::Ident(_) | Matcher::Symbol(_))),
        }
    }
}

/// Where a file is and what it defines, as its `file` document (or its chunks) say.
struct FileInfo {
    repo: String,
    path: String,
    lang: Option<Lang>,
    defs: Vec<FileDef>,
}

impl Verifier<'_> {
    /// True when every matcher that looks at the lowercase copy has an ASCII finder, so that [`term_absent`] can
    /// do without the copy on ASCII text.
    fn finders_cover(&self) -> bool {
        self.matchers
            .iter()
            .zip(&self.finders)
            .all(|(m, f)| f.is_some() || !reads_lower(m, self.case_sensitive))
    }

    /// Reads a `file` document: where the file is and, when a term needs them, its definitions.
    fn file_info(&self, doc: &TantivyDocument) -> Result<FileInfo> {
        let f = self.fields;
        // Definitions are looked up by the names the terms ask for (`defs_named`): JSON that holds none of them, as
        // a token may appear in text, needs no parsing.
        let defs = match stored_str(doc, f.file_defs).filter(|_| self.needs_defs) {
            Some(json)
                if self.matchers.iter().zip(&self.finders).any(|(m, finder)| {
                    match (m, finder) {
                        // The term's finder, when it has one, reads ASCII text faster than a window at a time.
                        (Matcher::Ident(_), Some(finder)) if json.is_ascii() => {
                            finder.is_match(json.as_bytes())
                        }
                        (Matcher::Ident(t) | Matcher::Symbol(t), _) => may_have_token(json, t),
                        (Matcher::Literal { .. } | Matcher::Regex(_), _) => false,
                    }
                }) =>
            {
                serde_json::from_str(json)
                    .map_err(|e| Error::Corrupt(format!("file definitions: {e}")))?
            }
            _ => Vec::new(),
        };
        Ok(FileInfo {
            repo: stored_str(doc, f.repo).unwrap_or("").to_string(),
            path: stored_str(doc, f.path).unwrap_or("").to_string(),
            lang: stored_str(doc, f.lang).and_then(|l| l.parse::<Lang>().ok()),
            defs,
        })
    }

    /// Loads one candidate file whole and appends its matching lines to `hits`, if every term matches it.
    fn file(
        &self,
        searcher: &Searcher,
        addr: DocAddress,
        score: f32,
        hits: &mut Vec<SearchHit>,
    ) -> Result<()> {
        self.meter.check()?;
        let doc: TantivyDocument = searcher
            .doc(addr)
            .map_err(tantivy_err("reading a stored file"))?;
        let info = self.file_info(&doc)?;
        let content = text::whole_text(
            searcher,
            self.fields,
            self.cols,
            addr,
            &info.repo,
            &info.path,
        )?;
        self.meter.charge(content.len())?;
        let piece = Piece::new(0, content);
        let all = vec![true; self.matchers.len()];
        // A term absent from the whole file rules it out before anything else is done.
        let Some(found) = self.piece_lines(&piece, &info.defs, &all, true)? else {
            return Ok(());
        };
        let Some(lines) = combine(found) else {
            return Ok(());
        };
        for (line, m) in lines {
            let snippet = piece.index.snippet(&piece.text, line);
            hits.push(self.hit(&info, line, m, score, snippet));
        }
        Ok(())
    }

    /// Verifies the candidate chunks of one file together and appends its matching lines to `hits`, if every term
    /// matches the file (each in one of the chunks that may hold it).
    fn chunks(
        &self,
        searcher: &Searcher,
        group: &ChunkGroup,
        hits: &mut Vec<SearchHit>,
    ) -> Result<()> {
        let f = self.fields;
        let Some(&(first, _)) = group.chunks.first() else {
            return Ok(());
        };
        let file_addr = self
            .cols
            .file_of(first)
            .ok_or_else(|| Error::Corrupt("a chunk without its file".to_string()))?;
        let one = group.chunks.len() == 1;
        self.meter.check()?;
        let first_chunk = text::read_chunk(searcher, f, first)?;
        let info = if self.needs_defs {
            let doc: TantivyDocument = searcher
                .doc(file_addr)
                .map_err(tantivy_err("reading a stored file"))?;
            self.file_info(&doc)?
        } else {
            FileInfo {
                repo: first_chunk.repo.clone(),
                path: first_chunk.path.clone(),
                lang: first_chunk.lang.parse::<Lang>().ok(),
                defs: Vec::new(),
            }
        };
        let mut found: Vec<TermLines<'_>> = (0..self.matchers.len())
            .map(|_| TermLines::default())
            .collect();
        let mut pieces: Vec<(DocAddress, Piece)> = Vec::with_capacity(group.chunks.len());
        let mut next = Some(first_chunk);
        for &(addr, mask) in &group.chunks {
            let chunk = match next.take() {
                Some(chunk) => chunk,
                None => {
                    self.meter.check()?;
                    text::read_chunk(searcher, f, addr)?
                }
            };
            self.meter.charge(chunk.text.len())?;
            let first_line = self.cols.first_line(addr).unwrap_or(0);
            let piece = Piece::new(first_line, chunk.text);
            let present: Vec<bool> = (0..self.matchers.len())
                .map(|i| i >= MASK_TERMS || mask & (1 << i) != 0)
                .collect();
            // A lone chunk is the whole candidate file: one absent term rules it out at once.
            let Some(lines) = self.piece_lines(&piece, &info.defs, &present, one)? else {
                return Ok(());
            };
            for (all, term) in found.iter_mut().zip(lines) {
                all.lines.extend(term.lines);
                all.defs.extend(term.defs);
            }
            pieces.push((addr, piece));
        }
        let Some(lines) = combine(found) else {
            return Ok(());
        };
        let mut file_lines =
            FileLines::new(searcher, f, self.cols, file_addr, &info.repo, &info.path);
        for (addr, piece) in pieces {
            file_lines.preload(addr, piece.text, piece.index);
        }
        for (line, m) in lines {
            let snippet = file_lines.snippet(line_number(line))?;
            hits.push(self.hit(&info, line, m, 0.0, snippet));
        }
        Ok(())
    }

    /// One hit on the 0-based `line` of a file.
    fn hit(
        &self,
        info: &FileInfo,
        line: usize,
        m: LineMatch,
        score: f32,
        snippet: String,
    ) -> SearchHit {
        let mut hit = SearchHit {
            repo: info.repo.clone(),
            path: info.path.clone(),
            line: line_number(line),
            end_line: line_number(line),
            kind: None,
            name: None,
            lang: info.lang,
            snippet,
            score: score + m.terms as f32,
            matched: super::LineMatch::Text,
        };
        if let Some(def) = m.definition {
            hit.kind = Some(def.kind);
            hit.end_line = def.end_line.max(hit.line);
            hit.score += DEF_LINE_BONUS;
            if self.words.contains(&def.name) {
                hit.score += 2.0 * EXACT_NAME_BONUS;
            } else if self.words.iter().any(|w| w.eq_ignore_ascii_case(&def.name)) {
                hit.score += EXACT_NAME_BONUS;
            }
            hit.name = Some(def.name);
        }
        hit
    }

    /// For each term, the lines of `piece` (as the file's lines) where it matches, with the definitions on them; a
    /// term not `present` is not looked for. `None` when `strict` and some present term occurs nowhere in the
    /// piece.
    ///
    /// Most candidates of a rare literal or regex hold none of it: one pass over the whole piece rules a term out
    /// before its lines are indexed and the definitions decoded. Most files are ASCII, and there that pass needs no
    /// lowercase copy.
    fn piece_lines<'d>(
        &self,
        piece: &Piece,
        defs: &'d [FileDef],
        present: &[bool],
        strict: bool,
    ) -> Result<Option<Vec<TermLines<'d>>>> {
        let content = piece.text.as_str();
        let ascii = content.is_ascii() && self.finders_cover();
        let early = if ascii {
            String::new()
        } else {
            lowered(content, self.matchers, self.case_sensitive)
        };
        let finders = ascii.then_some(&self.finders[..]);
        let occurs: Vec<bool> = (0..self.matchers.len())
            .map(|i| {
                present[i]
                    && !term_absent(
                        content,
                        &early,
                        finders,
                        self.matchers,
                        i,
                        self.case_sensitive,
                    )
            })
            .collect();
        if strict && occurs.iter().any(|o| !o) {
            return Ok(None);
        }
        let mut out: Vec<TermLines<'d>> = (0..self.matchers.len())
            .map(|_| TermLines::default())
            .collect();
        if !occurs.iter().any(|o| *o) {
            return Ok(Some(out));
        }
        // ASCII text with a finder for each term that reads lowercase: the finders read the text itself.
        let lower = if ascii { String::new() } else { early };
        for (i, matcher) in self.matchers.iter().enumerate() {
            if occurs[i] {
                out[i] = term_lines(
                    content,
                    &lower,
                    finders.and_then(|f| f.get(i)).and_then(Option::as_ref),
                    &piece.index,
                    piece.first_line,
                    defs,
                    matcher,
                    self.case_sensitive,
                    self.meter,
                )?;
            }
        }
        Ok(Some(out))
    }
}

fn line_number(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// What matched on one line.
#[derive(Debug, Default)]
struct LineMatch {
    /// How many of the query's terms matched this line.
    terms: u32,
    /// The definition on this line whose name a term asked for.
    definition: Option<FileDef>,
}

/// The lowercase copy of `content` that identifier and case-insensitive literal terms are matched in; empty when no
/// term needs it (regex and case-sensitive terms look at the content itself).
fn lowered(content: &str, matchers: &[Matcher], case_sensitive: bool) -> String {
    if matchers.iter().any(|m| reads_lower(m, case_sensitive)) {
        lowercase(content)
    } else {
        String::new()
    }
}

/// True when `m` is matched in the lowercase copy of a file.
fn reads_lower(m: &Matcher, case_sensitive: bool) -> bool {
    match m {
        Matcher::Ident(_) => true,
        Matcher::Literal { .. } => !case_sensitive,
        Matcher::Symbol(_) | Matcher::Regex(_) => false,
    }
}

/// For each matcher that [`reads_lower`], a finder of its lowercase text that ignores ASCII case, when that text is
/// ASCII (and can be on one line); `None` for the others.
fn ascii_finders(matchers: &[Matcher], case_sensitive: bool) -> Vec<Option<AsciiFinder>> {
    matchers
        .iter()
        .map(|m| {
            let lower = match m {
                Matcher::Ident(t) => t,
                Matcher::Literal { lower, .. } if !case_sensitive => lower,
                _ => return None,
            };
            if lower.contains(['\n', '\r']) {
                return None;
            }
            AsciiFinder::new(lower)
        })
        .collect()
}

/// True when term `i` cannot match any line of `content`: its text occurs nowhere in it. Each check is one the
/// line-by-line matching in [`term_lines`] makes first anyway, so a term this rules out is one [`term_lines`] would
/// find no line for.
///
/// `lower` is [`lowered`]`(content)`, except with `finders` ([`ascii_finders`], covering every matcher that
/// [`reads_lower`]) for ASCII `content`: there finding a lowercase ASCII needle while ignoring ASCII case is finding
/// it in the lowercased text, so no copy is needed and `lower` may be empty.
fn term_absent(
    content: &str,
    lower: &str,
    finders: Option<&[Option<AsciiFinder>]>,
    matchers: &[Matcher],
    i: usize,
    case_sensitive: bool,
) -> bool {
    match &matchers[i] {
        Matcher::Symbol(_) => false,
        Matcher::Regex(re) => !re.is_match(content),
        Matcher::Literal { needle, .. } if needle.contains(['\n', '\r']) => true,
        Matcher::Literal { needle, .. } if case_sensitive => {
            memmem::find(content.as_bytes(), needle.as_bytes()).is_none()
        }
        Matcher::Ident(t) | Matcher::Literal { lower: t, .. } => {
            match finders.and_then(|f| f.get(i)).and_then(Option::as_ref) {
                Some(finder) => !finder.is_match(content.as_bytes()),
                None => memmem::find(lower.as_bytes(), t.as_bytes()).is_none(),
            }
        }
    }
}

/// The lines where one term matches in (a piece of) a file, with the definitions found on them.
#[derive(Default)]
struct TermLines<'d> {
    /// The file's 0-based lines.
    lines: BTreeSet<usize>,
    /// Definitions on some of those lines, with their 0-based line.
    defs: Vec<(usize, &'d FileDef)>,
}

/// The lines where some term matches, given each term's lines and definitions; `None` when a term has no line.
fn combine(found: Vec<TermLines<'_>>) -> Option<BTreeMap<usize, LineMatch>> {
    let mut out: BTreeMap<usize, LineMatch> = BTreeMap::new();
    for term in found {
        if term.lines.is_empty() {
            return None;
        }
        for line in term.lines {
            let entry = out.entry(line).or_default();
            entry.terms += 1;
            if entry.definition.is_none() {
                if let Some((_, def)) = term.defs.iter().find(|(l, _)| *l == line) {
                    entry.definition = Some((*def).clone());
                }
            }
        }
    }
    Some(out)
}

/// The lines where one term matches in `content`, a piece of a file starting at its 0-based line `first_line`,
/// as the file's 0-based lines, with the definitions (among `defs`, the file's) found on them. `lower` is
/// [`lowered`]`(content)`.
#[allow(clippy::too_many_arguments)]
fn term_lines<'d>(
    content: &str,
    lower: &str,
    finder: Option<&AsciiFinder>,
    index: &LineIndex,
    first_line: usize,
    defs: &'d [FileDef],
    matcher: &Matcher,
    case_sensitive: bool,
    meter: &Meter<'_>,
) -> Result<TermLines<'d>> {
    // Lowercasing keeps line breaks, so line numbers found in the lowercase copy are the content's line numbers;
    // only the offsets differ when non-ASCII characters change length, hence its own line index.
    let lower_index = if lower.is_empty() || content.is_ascii() {
        None
    } else {
        Some(LineIndex::new(lower))
    };
    let lower_line_of = |off: usize| lower_index.as_ref().unwrap_or(index).line_of(off);
    let lines = index.count(content);
    let in_piece = |line: usize| line >= first_line && line - first_line < lines;
    let mut found: BTreeSet<usize> = BTreeSet::new();
    let mut def_lines: Vec<(usize, &FileDef)> = Vec::new();
    match matcher {
        Matcher::Ident(t) => {
            let mut candidates = BTreeSet::new();
            match finder {
                Some(finder) => candidates.extend(
                    finder
                        .find_iter(content.as_bytes())
                        .map(|off| index.line_of(off)),
                ),
                None => candidates
                    .extend(memmem::find_iter(lower.as_bytes(), t.as_bytes()).map(lower_line_of)),
            }
            for (n, line) in candidates.into_iter().enumerate() {
                if n % LINES_PER_CHECK == 0 {
                    meter.check()?;
                }
                if has_code_token(index.line(content, line), t) {
                    found.insert(first_line + line);
                }
            }
            def_lines.extend(
                defs_named(defs, t)
                    .into_iter()
                    .filter(|(l, _)| in_piece(*l)),
            );
        }
        Matcher::Symbol(t) => {
            for (line, def) in defs_named(defs, t) {
                if in_piece(line) {
                    found.insert(line);
                    def_lines.push((line, def));
                }
            }
        }
        Matcher::Literal {
            needle,
            lower: lower_needle,
        } => {
            // Lines are matched without their line break, so a needle holding one can never match.
            if needle.contains(['\n', '\r']) {
                return Ok(TermLines {
                    lines: found,
                    defs: def_lines,
                });
            }
            if case_sensitive {
                for off in memmem::find_iter(content.as_bytes(), needle.as_bytes()) {
                    found.insert(first_line + index.line_of(off));
                }
            } else if let Some(finder) = finder {
                for off in finder.find_iter(content.as_bytes()) {
                    found.insert(first_line + index.line_of(off));
                }
            } else {
                for off in memmem::find_iter(lower.as_bytes(), lower_needle.as_bytes()) {
                    found.insert(first_line + lower_line_of(off));
                }
            }
        }
        Matcher::Regex(re) => {
            // A line that matches on its own also matches inside the whole text (`multi_line` keeps `^`/`$`
            // at line edges), so one pass over the whole text rules most candidates out cheaply.
            if re.is_match(content) {
                for line in 0..lines {
                    if line % LINES_PER_CHECK == 0 {
                        meter.check()?;
                    }
                    if re.is_match(index.line(content, line)) {
                        found.insert(first_line + line);
                    }
                }
            }
        }
    }
    Ok(TermLines {
        lines: found,
        defs: def_lines,
    })
}

/// The definitions whose name has `t` among its code tokens, with their 0-based first line.
fn defs_named<'d>(defs: &'d [FileDef], t: &str) -> Vec<(usize, &'d FileDef)> {
    defs.iter()
        .filter(|d| {
            // Most names do not hold the token's letters at all; only the others are tokenized.
            if !may_have_token(&d.name, t) {
                return false;
            }
            let mut hit = false;
            for_each_code_token(&d.name, |tok| hit |= tok == t);
            hit
        })
        .map(|d| ((d.line as usize).saturating_sub(1), d))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
