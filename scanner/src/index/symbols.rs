//! Symbol questions: find a definition by name (exact, prefix, fuzzy), outline a file, list every definition.

use std::collections::{BTreeMap, BTreeSet};

use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{BooleanQuery, FuzzyTermQuery, Occur, Query, RegexQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, Searcher, TantivyDocument, Term};

use super::schema::{file_key, Fields, KIND_INFO, KIND_SYMBOL};
use super::text::{ChunkColumns, FileLines};
use super::tokenizer::lowercase;
use super::writer::kind_name;
use super::{
    check_repo_name, stored_json, stored_str, tantivy_err, Inner, MatchKind, SymbolEntry,
    SymbolHit, SymbolOptions,
};
use crate::error::{Error, Result};
use crate::model::{Definition, Lang};

/// How many candidates each phase (exact, prefix, fuzzy) reads at most, as a multiple of the limit. Candidates are
/// re-ranked here (shorter names first, exact case first), so each phase reads more than it returns.
const CANDIDATES_PER_HIT: usize = 8;

fn term(field: tantivy::schema::Field, value: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

/// Checks that a repository exists, so a typo gets an error rather than an empty answer.
pub(crate) fn require_repo(searcher: &Searcher, f: &Fields, repo: &str) -> Result<()> {
    check_repo_name(repo)?;
    let n = searcher
        .doc_freq(&Term::from_field_text(f.repo, repo))
        .map_err(tantivy_err("looking up a repository"))?;
    if n == 0 {
        return Err(Error::UnknownRepo(repo.to_string()));
    }
    Ok(())
}

/// Edit distance counting a swap of two neighbours as one edit (what Tantivy's fuzzy query counts).
pub(crate) fn edit_distance(a: &str, b: &str) -> u32 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i as u32;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j as u32;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = u32::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The largest edit distance a fuzzy lookup allows for a name of this many characters: short names would match
/// nearly everything at distance 2.
fn fuzzy_distance(chars: usize) -> u8 {
    match chars {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    }
}

/// The longest name `symbol` looks up. Names are matched by prefix and fuzzily through automata whose size grows
/// with the name, and no real definition has a longer one.
pub(crate) const MAX_SYMBOL_NAME_BYTES: usize = 256;

/// Trims a symbol name and checks that it is neither empty nor longer than [`MAX_SYMBOL_NAME_BYTES`].
pub(crate) fn check_symbol_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::Query(
            "the symbol name is empty; give a name such as parse_query or Parser".to_string(),
        ));
    }
    if name.len() > MAX_SYMBOL_NAME_BYTES {
        return Err(Error::Query(format!(
            "the symbol name is {} bytes long and the most is {MAX_SYMBOL_NAME_BYTES}; give the name of one definition, such as parse_query",
            name.len()
        )));
    }
    Ok(name)
}

pub(crate) fn symbol(inner: &Inner, name: &str, opts: &SymbolOptions) -> Result<Vec<SymbolHit>> {
    let mut hits = lookup(inner, name, opts, false)?;
    add_snippets(inner, &mut hits)?;
    Ok(hits)
}

/// The definitions named exactly `name`, case included (what `refs` lists first).
pub(crate) fn exact(
    inner: &Inner,
    name: &str,
    repo: Option<&str>,
    limit: usize,
) -> Result<Vec<SymbolHit>> {
    let opts = SymbolOptions {
        kind: None,
        repo: repo.map(str::to_string),
        // Case-insensitive matches are read too and dropped below, so read more than asked.
        limit: limit.saturating_mul(4).max(limit),
    };
    let mut hits = lookup(inner, name, &opts, true)?;
    hits.retain(|h| h.name == name.trim());
    hits.truncate(limit);
    add_snippets(inner, &mut hits)?;
    Ok(hits)
}

/// Fills in each hit's snippet from its file's stored text, reading only the chunks that hold the hits' lines. Done
/// only for the hits that are kept: reading a file costs a decompression, and a common name has hundreds of
/// candidates (at 5 M lines, reading them all was 85% of `refs version`).
fn add_snippets(inner: &Inner, hits: &mut [SymbolHit]) -> Result<()> {
    let searcher = inner.reader.searcher();
    let f = &inner.fields;
    let cols = ChunkColumns::open(&searcher)?;
    let mut files: BTreeMap<(String, String), Option<FileLines<'_>>> = BTreeMap::new();
    for hit in hits {
        let key = (hit.repo.clone(), hit.path.clone());
        let lines = match files.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                // A file document can be missing when a concurrent commit replaced it: no snippet then.
                let lines = file_doc(&searcher, f, &hit.repo, &hit.path)?
                    .map(|addr| FileLines::new(&searcher, f, &cols, addr, &hit.repo, &hit.path));
                e.insert(lines)
            }
        };
        if let Some(lines) = lines {
            hit.snippet = lines.snippet(hit.line)?;
        }
    }
    Ok(())
}

/// The hits for `name`, best first, without their snippets.
fn lookup(
    inner: &Inner,
    name: &str,
    opts: &SymbolOptions,
    exact_only: bool,
) -> Result<Vec<SymbolHit>> {
    let name = check_symbol_name(name)?;
    if opts.limit == 0 {
        return Ok(Vec::new());
    }
    let searcher = inner.reader.searcher();
    let f = &inner.fields;
    let mut filters: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, term(f.kind, KIND_SYMBOL))];
    if let Some(repo) = &opts.repo {
        require_repo(&searcher, f, repo)?;
        filters.push((Occur::Must, term(f.repo, repo)));
    }
    if let Some(kind) = opts.kind {
        filters.push((Occur::Must, term(f.sym_kind, &kind_name(kind))));
    }
    let lower = lowercase(name);
    // Tantivy allocates twice the requested count up front, so the cap is bounded whatever the limit.
    let cap = opts
        .limit
        .saturating_mul(CANDIDATES_PER_HIT)
        .clamp(64, 1 << 16);
    let mut seen: BTreeSet<DocAddress> = BTreeSet::new();
    let mut hits: Vec<SymbolHit> = Vec::new();

    let with_filters = |q: Box<dyn Query>| {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            filters.iter().map(|(o, q)| (*o, q.box_clone())).collect();
        clauses.push((Occur::Must, q));
        BooleanQuery::new(clauses)
    };
    let mut phases: Vec<(MatchKind, Box<dyn Query>)> =
        vec![(MatchKind::Exact, term(f.sym_lower, &lower))];
    let prefix = RegexQuery::from_pattern(&format!("{}.+", regex::escape(&lower)), f.sym_lower)
        .map_err(tantivy_err("building a prefix query"))?;
    phases.push((MatchKind::Prefix, Box::new(prefix)));
    let distance = fuzzy_distance(lower.chars().count());
    if distance > 0 {
        phases.push((
            MatchKind::Fuzzy,
            Box::new(FuzzyTermQuery::new(
                Term::from_field_text(f.sym_lower, &lower),
                distance,
                true,
            )),
        ));
    }
    if exact_only {
        phases.truncate(1);
    }
    for (matched, q) in phases {
        if hits.len() >= opts.limit {
            break;
        }
        let found = searcher
            .search(&with_filters(q), &TopDocs::with_limit(cap).order_by_score())
            .map_err(tantivy_err("looking up symbols"))?;
        let mut phase_hits = Vec::new();
        for (_, addr) in found {
            if !seen.insert(addr) {
                continue;
            }
            let doc: TantivyDocument = searcher
                .doc(addr)
                .map_err(tantivy_err("reading a symbol"))?;
            let def: Definition = stored_json(&doc, f.sym_json, "symbol")?;
            let repo = stored_str(&doc, f.repo).unwrap_or("").to_string();
            let path = stored_str(&doc, f.path).unwrap_or("").to_string();
            let distance = edit_distance(&lowercase(&def.name), &lower);
            let exact_case = def.name == name;
            let score = match matched {
                MatchKind::Exact => 3.0 + if exact_case { 0.5 } else { 0.0 },
                // Shorter completions first: `parse` → `parser` before `parse_everything_else`.
                MatchKind::Prefix => 2.0 + 0.5 / (1.0 + distance as f32),
                MatchKind::Fuzzy => 1.0 + 0.5 / (1.0 + distance as f32),
            };
            phase_hits.push(SymbolHit {
                repo,
                path,
                line: def.line,
                end_line: def.end_line,
                kind: def.kind,
                name: def.name,
                lang: stored_str(&doc, f.lang).and_then(|l| l.parse::<Lang>().ok()),
                // Filled in for the hits kept (see `add_snippets`).
                snippet: String::new(),
                score,
                matched,
                distance,
                container: def.container,
                signature: def.signature,
            });
        }
        phase_hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| (&a.repo, &a.path, a.line).cmp(&(&b.repo, &b.path, b.line)))
        });
        hits.extend(phase_hits);
    }
    hits.truncate(opts.limit);
    Ok(hits)
}

/// The address of one file's `file` document, if the index has it.
pub(crate) fn file_doc(
    searcher: &Searcher,
    f: &Fields,
    repo: &str,
    path: &str,
) -> Result<Option<DocAddress>> {
    let q = BooleanQuery::new(vec![
        (Occur::Must, term(f.kind, super::schema::KIND_FILE)),
        (Occur::Must, term(f.key, &file_key(repo, path))),
    ]);
    let found = searcher
        .search(&q, &TopDocs::with_limit(1).order_by_score())
        .map_err(tantivy_err("reading a file"))?;
    Ok(found.first().map(|(_, addr)| *addr))
}

/// Finds which repository holds `path`: an absolute path is mapped through the repository roots; a relative one
/// is looked up in `repo`, or in every repository when `repo` is `None` (it must be in exactly one).
pub(crate) fn locate(inner: &Inner, repo: Option<&str>, path: &str) -> Result<(String, String)> {
    let searcher = inner.reader.searcher();
    let f = &inner.fields;
    let as_path = std::path::Path::new(path);
    let (repo, rel) = if as_path.is_absolute() {
        let (r, rel) = inner_resolve(inner, as_path).ok_or_else(|| {
            Error::UnknownFile(format!(
                "{path} is not inside any indexed repository; index its repository first, or give a path relative to a repository root"
            ))
        })?;
        if let Some(want) = repo {
            if want != r {
                return Err(Error::UnknownFile(format!(
                    "{path} belongs to repository {r:?}, not {want:?}"
                )));
            }
        }
        (r, rel)
    } else {
        let rel = path.trim_start_matches("./").to_string();
        match repo {
            Some(r) => {
                require_repo(&searcher, f, r)?;
                (r.to_string(), rel)
            }
            None => {
                let q = BooleanQuery::new(vec![
                    (Occur::Must, term(f.kind, KIND_INFO)),
                    (Occur::Must, term(f.path, &rel)),
                ]);
                let addrs = searcher
                    .search(&q, &DocSetCollector)
                    .map_err(tantivy_err("looking up a file"))?;
                let mut repos = BTreeSet::new();
                for addr in addrs {
                    let doc: TantivyDocument =
                        searcher.doc(addr).map_err(tantivy_err("reading a file"))?;
                    if let Some(r) = stored_str(&doc, f.repo) {
                        repos.insert(r.to_string());
                    }
                }
                match repos.len() {
                    0 => {
                        return Err(Error::UnknownFile(format!(
                            "no indexed repository has a file {rel}; give the path relative to its repository root"
                        )))
                    }
                    1 => (repos.into_iter().next().unwrap_or_default(), rel),
                    _ => {
                        let names: Vec<String> = repos.into_iter().collect();
                        return Err(Error::UnknownFile(format!(
                            "several repositories have a file {rel} ({}); say which one",
                            names.join(", ")
                        )));
                    }
                }
            }
        }
    };
    let key = file_key(&repo, &rel);
    let q = BooleanQuery::new(vec![
        (Occur::Must, term(f.kind, KIND_INFO)),
        (Occur::Must, term(f.key, &key)),
    ]);
    let n = searcher
        .search(&q, &tantivy::collector::Count)
        .map_err(tantivy_err("looking up a file"))?;
    if n == 0 {
        return Err(Error::UnknownFile(format!(
            "repository {repo:?} has no indexed file {rel}; paths are relative to the repository root"
        )));
    }
    Ok((repo, rel))
}

fn inner_resolve(inner: &Inner, abs: &std::path::Path) -> Option<(String, String)> {
    super::writer::resolve_path(inner, abs)
}

pub(crate) fn outline(inner: &Inner, repo: Option<&str>, path: &str) -> Result<Vec<Definition>> {
    let (repo, rel) = locate(inner, repo, path)?;
    let searcher = inner.reader.searcher();
    let f = &inner.fields;
    let q = BooleanQuery::new(vec![
        (Occur::Must, term(f.kind, KIND_SYMBOL)),
        (Occur::Must, term(f.key, &file_key(&repo, &rel))),
    ]);
    let addrs = searcher
        .search(&q, &DocSetCollector)
        .map_err(tantivy_err("reading an outline"))?;
    let mut defs: Vec<Definition> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let doc: TantivyDocument = searcher
            .doc(addr)
            .map_err(tantivy_err("reading a symbol"))?;
        defs.push(stored_json(&doc, f.sym_json, "symbol")?);
    }
    defs.sort_by(|a, b| {
        (a.line, std::cmp::Reverse(a.end_line), &a.name).cmp(&(
            b.line,
            std::cmp::Reverse(b.end_line),
            &b.name,
        ))
    });
    Ok(defs)
}

pub(crate) fn symbols(
    inner: &Inner,
    repo: Option<&str>,
    visit: &mut dyn FnMut(SymbolEntry),
) -> Result<u64> {
    let searcher = inner.reader.searcher();
    let f = &inner.fields;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, term(f.kind, KIND_SYMBOL))];
    if let Some(r) = repo {
        require_repo(&searcher, f, r)?;
        clauses.push((Occur::Must, term(f.repo, r)));
    }
    let addrs = searcher
        .search(&BooleanQuery::new(clauses), &DocSetCollector)
        .map_err(tantivy_err("listing symbols"))?;
    // Order by path using the path column, so definitions can be streamed file by file without loading them all.
    let mut by_path: BTreeMap<String, Vec<DocAddress>> = BTreeMap::new();
    let mut columns = Vec::new();
    for segment in searcher.segment_readers() {
        columns.push(
            segment
                .fast_fields()
                .str("path")
                .map_err(tantivy_err("reading paths"))?,
        );
    }
    let mut buf = String::new();
    for addr in addrs {
        let Some(Some(column)) = columns.get(addr.segment_ord as usize) else {
            continue;
        };
        let Some(ord) = column.term_ords(addr.doc_id).next() else {
            continue;
        };
        column
            .ord_to_str(ord, &mut buf)
            .map_err(|e| Error::Corrupt(format!("path column: {e}")))?;
        by_path.entry(buf.clone()).or_default().push(addr);
    }
    let mut count = 0u64;
    for addrs in by_path.into_values() {
        let mut entries = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let doc: TantivyDocument = searcher
                .doc(addr)
                .map_err(tantivy_err("reading a symbol"))?;
            let definition: Definition = stored_json(&doc, f.sym_json, "symbol")?;
            entries.push(SymbolEntry {
                repo: stored_str(&doc, f.repo).unwrap_or("").to_string(),
                path: stored_str(&doc, f.path).unwrap_or("").to_string(),
                lang: stored_str(&doc, f.lang).and_then(|l| l.parse::<Lang>().ok()),
                definition,
            });
        }
        entries.sort_by(|a, b| (&a.repo, a.definition.line).cmp(&(&b.repo, b.definition.line)));
        for entry in entries {
            count += 1;
            visit(entry);
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &str, b: &str, expected: u32) {
        assert_eq!(edit_distance(a, b), expected, "distance {a:?} {b:?}");
    }

    #[test]
    fn distances() {
        check("parse", "parse", 0);
        check("parse", "parser", 1);
        check("parse", "prase", 1);
        check("parse", "pase", 1);
        check("parse", "bars", 2);
        check("parse", "xyz", 5);
        check("", "abc", 3);
    }
}
