//! Search: turn a parsed query into a Tantivy query that selects candidate files, then verify every candidate
//! against its stored content and report the matching lines.
//!
//! The index only ever narrows the search. Identifier terms are exact at the term level, and literal and regex
//! terms are answered by trigrams, which over-approximate; either way a line is reported only after the real text
//! was checked, so a hit is never a guess. Queries with identifiers are ranked (BM25 with boosts for files that
//! define the identifier or whose path contains it); pure text queries stream candidates in index order and stop as
//! soon as enough verified lines are found.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use memchr::memmem;
use rayon::prelude::*;
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, EnableScoring, Occur, Query, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, DocSet, Searcher, TantivyDocument, Term, TERMINATED};

use super::schema::{Fields, FileDef, KIND_FILE};
use super::tokenizer::{for_each_code_token, has_code_token, lowercase, MAX_IDENTIFIER_BYTES};
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

    let mut clauses: Vec<(Occur, Box<dyn Query>)> =
        vec![(Occur::Must, filter_term(f.kind, KIND_FILE))];
    let filter_clauses = |clauses: &[(Occur, Box<dyn Query>)]| -> Vec<(Occur, Box<dyn Query>)> {
        clauses.iter().map(|(o, q)| (*o, q.box_clone())).collect()
    };
    for group in &filters.repos {
        clauses.push((
            Occur::Must,
            any_of(f.repo, group.iter().map(String::as_str)),
        ));
    }
    for group in &filters.langs {
        clauses.push((Occur::Must, any_of(f.lang, group.iter().map(|l| l.name()))));
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
        clauses.push((
            Occur::Must,
            Box::new(ConstScoreQuery::new(
                Box::new(TermSetQuery::new(terms)),
                0.0,
            )),
        ));
    }

    // The filters alone, for the substring fill below.
    let base = filter_clauses(&clauses);
    let mut matchers = Vec::new();
    let mut scored = false;
    for term in &q.terms {
        match term {
            QTerm::Ident(t) if t.len() <= MAX_IDENTIFIER_BYTES => {
                scored = true;
                clauses.push((Occur::Must, ident_query(f, t)));
                matchers.push(Matcher::Ident(t.clone()));
            }
            QTerm::Symbol(t) => {
                scored = true;
                clauses.push((Occur::Must, scored_term(f.def_tokens, t)));
                matchers.push(Matcher::Symbol(t.clone()));
            }
            // Overlong identifiers are not indexed as tokens (see the tokenizer), so they are searched as text.
            QTerm::Ident(_) | QTerm::Literal(_) | QTerm::Regex(_) => {
                let (clause, matcher) = text_term(f, term, q.case_sensitive)?;
                clauses.push((Occur::Must, clause));
                matchers.push(matcher);
            }
        }
    }
    let tquery = BooleanQuery::new(clauses);
    meter.check()?;
    let verifier = Verifier::new(f, &matchers, q.case_sensitive, &meter, &q.words);
    let mut hits = Vec::new();
    if scored {
        ranked(&searcher, &tquery, &verifier, opts.limit, &mut hits)?;
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
            let fill = substring_fill(&searcher, f, base, &q, &meter, opts.limit, &hits)?;
            hits.extend(fill);
        }
    } else {
        streamed(&searcher, &tquery, &verifier, opts.limit, &mut hits)?;
        hits.sort_by(|a, b| (&a.repo, &a.path, a.line).cmp(&(&b.repo, &b.path, b.line)));
    }
    hits.truncate(opts.limit);
    Ok(hits)
}

/// Lines where the query's identifiers appear inside longer words (as substrings, verified), none of `found`: at
/// most `limit - found.len()`, in index order, each scored below every identifier hit. Other terms (symbols,
/// literals, regexes) still apply as they are.
fn substring_fill(
    searcher: &Searcher,
    f: &Fields,
    mut clauses: Vec<(Occur, Box<dyn Query>)>,
    q: &query::Query,
    meter: &Meter<'_>,
    limit: usize,
    found: &[SearchHit],
) -> Result<Vec<SearchHit>> {
    let mut matchers = Vec::new();
    for term in &q.terms {
        match term {
            QTerm::Symbol(t) => {
                clauses.push((Occur::Must, filter_term(f.def_tokens, t)));
                matchers.push(Matcher::Symbol(t.clone()));
            }
            // Identifiers are looked for as text here: that is the fill.
            QTerm::Ident(_) | QTerm::Literal(_) | QTerm::Regex(_) => {
                let (clause, matcher) = text_term(f, term, q.case_sensitive)?;
                clauses.push((Occur::Must, clause));
                matchers.push(matcher);
            }
        }
    }
    let verifier = Verifier::new(f, &matchers, q.case_sensitive, meter, &q.words);
    let seen: BTreeSet<(&str, &str, u32)> = found
        .iter()
        .map(|h| (h.repo.as_str(), h.path.as_str(), h.line))
        .collect();
    let mut lines = Vec::new();
    // Lines already found as identifiers come back too: ask for enough to fill the rest after dropping them.
    streamed(
        searcher,
        &BooleanQuery::new(clauses),
        &verifier,
        limit.saturating_add(found.len()),
        &mut lines,
    )?;
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

/// A term searched as text (an identifier or literal as a substring, or a regex): the trigram clause that narrows
/// the candidates, and the matcher that verifies them.
fn text_term(f: &Fields, term: &QTerm, case_sensitive: bool) -> Result<(Box<dyn Query>, Matcher)> {
    Ok(match term {
        QTerm::Regex(re) => {
            let tq = TrigramQuery::for_regex(re, case_sensitive)?;
            (
                trigram_query(f.trigrams, &tq),
                Matcher::Regex(query::build_regex(re, case_sensitive)?),
            )
        }
        QTerm::Ident(s) | QTerm::Literal(s) | QTerm::Symbol(s) => (
            trigram_query(f.trigrams, &TrigramQuery::for_literal(s)),
            Matcher::Literal {
                needle: s.clone(),
                lower: lowercase(s),
            },
        ),
    })
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
    loop {
        let top = searcher
            .search(
                query,
                &TopDocs::with_limit(batch)
                    .and_offset(offset)
                    .order_by_score(),
            )
            .map_err(tantivy_err("searching"))?;
        let stopped =
            verify_in_order(searcher, verifier, &top, &mut files, hits, |hits, files| {
                hits >= limit && files >= MIN_RANKED_FILES
            })?;
        if stopped || top.len() < batch {
            return Ok(());
        }
        offset += batch;
        batch = batch.saturating_mul(4).min(MAX_BATCH);
    }
}

/// Unscored search: walk candidates in index order and stop at `limit` verified lines.
fn streamed(
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
    for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        let ord =
            u32::try_from(ord).map_err(|_| Error::Corrupt("too many segments".to_string()))?;
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
                    if verify_in_order(searcher, verifier, &pending, &mut files, hits, done)? {
                        return Ok(());
                    }
                    pending.clear();
                }
            }
            doc = scorer.advance();
        }
    }
    verify_in_order(searcher, verifier, &pending, &mut files, hits, done)?;
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

/// Verifies `candidates` (score, file) into `hits` exactly as calling [`Verifier::file`] on each in turn would,
/// stopping before the first file at which `done(hits, files)` holds (`files` counts the files verified so far, over
/// calls). After [`SERIAL_FILES`] files the rest are verified a chunk at a time on [`verify_pool`]; their lines are
/// taken in candidate order, so the answer is the same as serial verification's, and a file verified past the stop
/// is only discarded work. Returns true when `done` stopped it.
fn verify_in_order(
    searcher: &Searcher,
    verifier: &Verifier<'_>,
    candidates: &[(f32, DocAddress)],
    files: &mut usize,
    hits: &mut Vec<SearchHit>,
    done: impl Fn(usize, usize) -> bool,
) -> Result<bool> {
    let mut rest = candidates;
    while let Some(&(score, addr)) = rest.first() {
        if done(hits.len(), *files) {
            return Ok(true);
        }
        let Some(pool) = parallel_pool(*files).filter(|_| rest.len() > 1) else {
            verifier.file(searcher, addr, score, hits)?;
            *files += 1;
            rest = &rest[1..];
            continue;
        };
        let (chunk, after) = rest.split_at(rest.len().min(PARALLEL_CHUNK));
        let found: Vec<Result<Vec<SearchHit>>> = pool.install(|| {
            chunk
                .par_iter()
                .map(|&(score, addr)| {
                    let mut lines = Vec::new();
                    verifier.file(searcher, addr, score, &mut lines)?;
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

/// Checks candidate files against the real text.
struct Verifier<'a> {
    fields: &'a Fields,
    matchers: &'a [Matcher],
    /// [`ascii_finders`] of the matchers.
    finders: Vec<Option<regex::bytes::Regex>>,
    case_sensitive: bool,
    meter: &'a Meter<'a>,
    /// The query's identifiers as typed.
    words: &'a [String],
}

impl<'a> Verifier<'a> {
    fn new(
        fields: &'a Fields,
        matchers: &'a [Matcher],
        case_sensitive: bool,
        meter: &'a Meter<'a>,
        words: &'a [String],
    ) -> Verifier<'a> {
        Verifier {
            fields,
            matchers,
            finders: ascii_finders(matchers, case_sensitive),
            case_sensitive,
            meter,
            words,
        }
    }
}

impl Verifier<'_> {
    /// True when every matcher that looks at the lowercase copy has an ASCII finder, so that [`rules_out`] can do
    /// without the copy on ASCII text.
    fn finders_cover(&self) -> bool {
        self.matchers
            .iter()
            .zip(&self.finders)
            .all(|(m, f)| f.is_some() || !reads_lower(m, self.case_sensitive))
    }

    /// Loads one candidate file and appends its matching lines to `hits`, if every term matches it.
    fn file(
        &self,
        searcher: &Searcher,
        addr: DocAddress,
        score: f32,
        hits: &mut Vec<SearchHit>,
    ) -> Result<()> {
        let f = self.fields;
        self.meter.check()?;
        let doc: TantivyDocument = searcher
            .doc(addr)
            .map_err(tantivy_err("reading a stored file"))?;
        let content = stored_str(&doc, f.content).unwrap_or("");
        self.meter.charge(content.len())?;
        // Most candidates of a rare literal or regex hold none of it: one pass over the whole text rules them out
        // before their lines are indexed and their definitions decoded. Most files are ASCII, and there the pass needs
        // no lowercase copy.
        let ascii = content.is_ascii() && self.finders_cover();
        let copy = || lowered(content, self.matchers, self.case_sensitive);
        let early = if ascii { String::new() } else { copy() };
        let finders = ascii.then_some(&self.finders[..]);
        if rules_out(content, &early, finders, self.matchers, self.case_sensitive) {
            return Ok(());
        }
        let lower = if ascii { copy() } else { early };
        // Only identifier and symbol terms look at definitions; text-only queries skip decoding them.
        let needs_defs = self
            .matchers
            .iter()
            .any(|m| matches!(m, Matcher::Ident(_) | Matcher::Symbol(_)));
        let defs: Vec<FileDef> = match stored_str(&doc, f.file_defs).filter(|_| needs_defs) {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| Error::Corrupt(format!("file definitions: {e}")))?,
            None => Vec::new(),
        };
        let index = LineIndex::new(content);
        let Some(lines) = matching_lines(
            content,
            &lower,
            &index,
            &defs,
            self.matchers,
            self.case_sensitive,
            self.meter,
        )?
        else {
            return Ok(());
        };
        let repo = stored_str(&doc, f.repo).unwrap_or("").to_string();
        let path = stored_str(&doc, f.path).unwrap_or("").to_string();
        let lang = stored_str(&doc, f.lang).and_then(|l| l.parse::<Lang>().ok());
        for (line, m) in lines {
            let mut hit = SearchHit {
                repo: repo.clone(),
                path: path.clone(),
                line: line_number(line),
                end_line: line_number(line),
                kind: None,
                name: None,
                lang,
                snippet: index.snippet(content, line),
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
            hits.push(hit);
        }
        Ok(())
    }
}

fn line_number(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// Line `line` (1-based) of `text` with one line of context on each side; empty when there is no such line.
pub(crate) fn snippet_at(text: &str, line: u32) -> String {
    let index = LineIndex::new(text);
    let i = (line as usize).saturating_sub(1);
    if i >= index.count(text) {
        return String::new();
    }
    index.snippet(text, i)
}

/// The most characters of one line a snippet shows.
pub(crate) const SNIPPET_LINE_MAX: usize = 400;

/// A line cut to [`SNIPPET_LINE_MAX`] characters, with an ellipsis where it was cut.
fn clip_line(line: &str) -> std::borrow::Cow<'_, str> {
    match line.char_indices().nth(SNIPPET_LINE_MAX) {
        None => std::borrow::Cow::Borrowed(line),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &line[..end])),
    }
}

/// What matched on one line.
#[derive(Debug, Default)]
struct LineMatch {
    /// How many of the query's terms matched this line.
    terms: u32,
    /// The definition on this line whose name a term asked for.
    definition: Option<FileDef>,
}

/// Start offsets of the lines of a text.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex { starts }
    }

    /// The 0-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }

    /// Number of lines as `str::lines` counts them (a final newline does not start another line).
    fn count(&self, text: &str) -> usize {
        if text.is_empty() {
            0
        } else if text.ends_with('\n') {
            self.starts.len() - 1
        } else {
            self.starts.len()
        }
    }

    /// Line `i` without its line break.
    fn line<'t>(&self, text: &'t str, i: usize) -> &'t str {
        let start = self.starts[i];
        let end = self.starts.get(i + 1).map_or(text.len(), |&s| s - 1);
        let line = &text[start..end];
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// Line `i` with one line of context on each side, each at most [`SNIPPET_LINE_MAX`] characters (a hit on a
    /// line of a megabyte must not make an answer of a megabyte).
    fn snippet(&self, text: &str, i: usize) -> String {
        let last = self.count(text).saturating_sub(1);
        let from = i.saturating_sub(1);
        let to = (i + 1).min(last);
        (from..=to.max(from))
            .filter(|&k| k <= last)
            .map(|k| clip_line(self.line(text, k)))
            .collect::<Vec<_>>()
            .join("\n")
    }
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
fn ascii_finders(matchers: &[Matcher], case_sensitive: bool) -> Vec<Option<regex::bytes::Regex>> {
    matchers
        .iter()
        .map(|m| {
            let lower = match m {
                Matcher::Ident(t) => t,
                Matcher::Literal { lower, .. } if !case_sensitive => lower,
                _ => return None,
            };
            if lower.is_empty() || !lower.is_ascii() || lower.contains(['\n', '\r']) {
                return None;
            }
            regex::bytes::RegexBuilder::new(&regex::escape(lower))
                .case_insensitive(true)
                .unicode(false)
                .build()
                .ok()
        })
        .collect()
}

/// True when some term cannot match any line of `content`: its text occurs nowhere in the file. Each check is one
/// the line-by-line matching in [`matching_lines`] makes first anyway, so a file this rules out is one
/// [`matching_lines`] would answer `None` for.
///
/// `lower` is [`lowered`]`(content)`, except with `finders` ([`ascii_finders`], covering every matcher that
/// [`reads_lower`]) for ASCII `content`: there finding a lowercase ASCII needle while ignoring ASCII case is finding
/// it in the lowercased text, so no copy is needed and `lower` may be empty.
fn rules_out(
    content: &str,
    lower: &str,
    finders: Option<&[Option<regex::bytes::Regex>]>,
    matchers: &[Matcher],
    case_sensitive: bool,
) -> bool {
    matchers.iter().enumerate().any(|(i, m)| match m {
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
    })
}

/// The 0-based lines of `content` where some term matches, or `None` when a term matches no line at all. `lower` is
/// [`lowered`]`(content)`.
fn matching_lines(
    content: &str,
    lower: &str,
    index: &LineIndex,
    defs: &[FileDef],
    matchers: &[Matcher],
    case_sensitive: bool,
    meter: &Meter<'_>,
) -> Result<Option<BTreeMap<usize, LineMatch>>> {
    // Lowercasing keeps line breaks, so line numbers found in the lowercase copy are the content's line numbers;
    // only the offsets differ when non-ASCII characters change length, hence its own line index.
    let lower_index = if lower.is_empty() || content.is_ascii() {
        None
    } else {
        Some(LineIndex::new(lower))
    };
    let lower_line_of = |off: usize| lower_index.as_ref().unwrap_or(index).line_of(off);
    let mut out: BTreeMap<usize, LineMatch> = BTreeMap::new();
    for matcher in matchers {
        let mut found: BTreeSet<usize> = BTreeSet::new();
        let mut def_lines: Vec<(usize, &FileDef)> = Vec::new();
        match matcher {
            Matcher::Ident(t) => {
                let mut candidates = BTreeSet::new();
                for off in memmem::find_iter(lower.as_bytes(), t.as_bytes()) {
                    candidates.insert(lower_line_of(off));
                }
                for (n, line) in candidates.into_iter().enumerate() {
                    if n % LINES_PER_CHECK == 0 {
                        meter.check()?;
                    }
                    if has_code_token(index.line(content, line), t) {
                        found.insert(line);
                    }
                }
                def_lines.extend(defs_named(defs, t));
            }
            Matcher::Symbol(t) => {
                for (line, def) in defs_named(defs, t) {
                    if line < index.count(content) {
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
                    return Ok(None);
                }
                if case_sensitive {
                    for off in memmem::find_iter(content.as_bytes(), needle.as_bytes()) {
                        found.insert(index.line_of(off));
                    }
                } else {
                    for off in memmem::find_iter(lower.as_bytes(), lower_needle.as_bytes()) {
                        found.insert(lower_line_of(off));
                    }
                }
            }
            Matcher::Regex(re) => {
                // A line that matches on its own also matches inside the whole text (`multi_line` keeps `^`/`$`
                // at line edges), so one pass over the whole text rules most candidates out cheaply.
                if re.is_match(content) {
                    for line in 0..index.count(content) {
                        if line % LINES_PER_CHECK == 0 {
                            meter.check()?;
                        }
                        if re.is_match(index.line(content, line)) {
                            found.insert(line);
                        }
                    }
                }
            }
        }
        if found.is_empty() {
            return Ok(None);
        }
        for line in found {
            let entry = out.entry(line).or_default();
            entry.terms += 1;
            if entry.definition.is_none() {
                if let Some((_, def)) = def_lines.iter().find(|(l, _)| *l == line) {
                    entry.definition = Some((*def).clone());
                }
            }
        }
    }
    Ok(Some(out))
}

/// The definitions whose name has `t` among its code tokens, with their 0-based first line.
fn defs_named<'d>(defs: &'d [FileDef], t: &str) -> Vec<(usize, &'d FileDef)> {
    defs.iter()
        .filter(|d| {
            let mut hit = false;
            for_each_code_token(&d.name, |tok| hit |= tok == t);
            hit
        })
        .map(|d| ((d.line as usize).saturating_sub(1), d))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
