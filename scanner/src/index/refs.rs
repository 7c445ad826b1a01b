//! References and change impact: where a name is used, and what may break if a file or a name changes.
//!
//! Each file document carries its references twice (see [`super::schema`]): the names, indexed raw in one field
//! per kind of use with a frequency per file, and the uses with their lines, stored compactly ([`encode`]).
//! Counting the uses of a name reads postings only; listing them reads the stored documents of the files
//! shown, in path order, and nothing else. Impact follows the same postings outward step by step (a file's
//! importers from the dependency graph, a name's users from the references), reading each reached file once.
//!
//! References are names as written, not resolved bindings: `x.parse()` is a use of every `parse`. The answers
//! say so; the queries per language (`queries/<lang>/references.scm`) say what each grammar lets us see.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use tantivy::postings::Postings;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{
    DocAddress, DocId, DocSet, Searcher, TantivyDocument, TantivyError, Term, TERMINATED,
};

use super::schema::{Fields, FileDef};
use super::symbols::{self, locate, require_repo};
use super::text::{ChunkColumns, FileLines};
use super::types::{
    Enclosing, Impact, ImpactDef, ImpactFile, ImpactOptions, ImpactTarget, RefHit, Refs,
    RefsOptions, MAX_IMPACT_DEPTH, MAX_IMPACT_FILES,
};
use super::{stored_json, stored_str, tantivy_err, Inner, SymbolOptions};
use crate::deps::Target;
use crate::error::{Error, Result};
use crate::model::{Lang, RefKind, Reference};

fn kind_char(kind: RefKind) -> char {
    match kind {
        RefKind::Call => 'c',
        RefKind::Type => 't',
        RefKind::Import => 'i',
    }
}

fn char_kind(c: &str) -> Option<RefKind> {
    match c {
        "c" => Some(RefKind::Call),
        "t" => Some(RefKind::Type),
        "i" => Some(RefKind::Import),
        _ => None,
    }
}

/// The stored form of a file's references: one line per (kind, name), `k<TAB>name<TAB>line,line,...`, sorted.
/// Names never hold tabs or line breaks (extraction keeps identifier characters only).
pub(crate) fn encode(refs: &[Reference]) -> String {
    let mut groups: BTreeMap<(RefKind, &str), Vec<u32>> = BTreeMap::new();
    for r in refs {
        groups
            .entry((r.kind, r.name.as_str()))
            .or_default()
            .push(r.line);
    }
    let mut out = String::new();
    for ((kind, name), lines) in groups {
        out.push(kind_char(kind));
        out.push('\t');
        out.push_str(name);
        out.push('\t');
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Writing to a String cannot fail.
            let _ = write!(out, "{line}");
        }
        out.push('\n');
    }
    out
}

/// Reads [`encode`]'s form back as (kind, name, lines); malformed lines are skipped.
pub(crate) fn decode(text: &str) -> impl Iterator<Item = (RefKind, &str, Vec<u32>)> {
    text.lines().filter_map(|line| {
        let mut parts = line.splitn(3, '\t');
        let kind = char_kind(parts.next()?)?;
        let name = parts.next()?;
        let lines = parts
            .next()?
            .split(',')
            .filter_map(|l| l.parse().ok())
            .collect();
        Some((kind, name, lines))
    })
}

fn field_of(f: &Fields, kind: RefKind) -> Field {
    match kind {
        RefKind::Call => f.ref_call,
        RefKind::Type => f.ref_type,
        RefKind::Import => f.ref_import,
    }
}

/// A file that uses some of the names asked for, and how often by kind (calls, types, imports).
#[derive(Debug, Clone)]
struct Candidate {
    addr: DocAddress,
    uses: [u64; 3],
    /// The ordinal of the file's path in its segment's path column: within one segment, ordinals sort as the
    /// paths do, so ordering needs no strings.
    path_ord: u64,
}

fn io_err(context: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |e| tantivy_err(context)(TantivyError::from(e))
}

/// The files (live documents, of `repo` when given) whose references of `kinds` include any of `names`, with
/// their use counts from the postings' frequencies, sorted by path. No stored document is read, and paths are
/// compared as strings only when the candidates span several segments.
fn candidates(
    searcher: &Searcher,
    f: &Fields,
    names: &[&str],
    kinds: &[RefKind],
    repo: Option<&str>,
) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    let mut columns = Vec::new();
    for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        let paths = segment
            .fast_fields()
            .str("path")
            .map_err(tantivy_err("reading paths"))?;
        columns.push(paths);
        let mut uses: HashMap<DocId, [u64; 3]> = HashMap::new();
        for &kind in kinds {
            let field = field_of(f, kind);
            let inverted = segment
                .inverted_index(field)
                .map_err(tantivy_err("reading references"))?;
            for name in names {
                let term = Term::from_field_text(field, name);
                let Some(mut postings) = inverted
                    .read_postings(&term, IndexRecordOption::WithFreqs)
                    .map_err(io_err("reading references"))?
                else {
                    continue;
                };
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    uses.entry(doc).or_default()[kind as usize] += u64::from(postings.term_freq());
                    doc = postings.advance();
                }
            }
        }
        if uses.is_empty() {
            continue;
        }
        let mut docs: Vec<DocId> = uses.keys().copied().collect();
        docs.sort_unstable();
        let alive = segment.alive_bitset();
        docs.retain(|d| alive.is_none_or(|a| a.is_alive(*d)));
        if let Some(repo) = repo {
            let inverted = segment
                .inverted_index(f.repo)
                .map_err(tantivy_err("reading repositories"))?;
            let term = Term::from_field_text(f.repo, repo);
            match inverted
                .read_postings(&term, IndexRecordOption::Basic)
                .map_err(io_err("reading repositories"))?
            {
                None => docs.clear(),
                Some(mut in_repo) => docs.retain(|&d| {
                    // Doc ids are ascending, as seeking needs.
                    in_repo.doc() <= d && in_repo.seek(d) == d
                }),
            }
        }
        let column = columns.last().and_then(Option::as_ref);
        for doc in docs {
            out.push(Candidate {
                addr: DocAddress::new(ord as u32, doc),
                uses: uses.get(&doc).copied().unwrap_or_default(),
                path_ord: column
                    .and_then(|c| c.term_ords(doc).next())
                    .unwrap_or(u64::MAX),
            });
        }
    }
    let segments: BTreeSet<u32> = out.iter().map(|c| c.addr.segment_ord).collect();
    if segments.len() <= 1 {
        out.sort_by_key(|c| (c.path_ord, c.addr));
        return Ok(out);
    }
    let mut keyed: Vec<(String, Candidate)> = Vec::with_capacity(out.len());
    let mut buf = String::new();
    for c in out {
        let mut path = String::new();
        if let Some(Some(column)) = columns.get(c.addr.segment_ord as usize) {
            if c.path_ord != u64::MAX {
                column
                    .ord_to_str(c.path_ord, &mut buf)
                    .map_err(|e| Error::Corrupt(format!("path column: {e}")))?;
                path.clone_from(&buf);
            }
        }
        keyed.push((path, c));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.addr.cmp(&b.1.addr)));
    Ok(keyed.into_iter().map(|(_, c)| c).collect())
}

/// What one file document holds that references and impact need.
struct FileView {
    repo: String,
    path: String,
    lang: Option<Lang>,
    defs: Vec<FileDef>,
    refs: String,
}

fn read_file(searcher: &Searcher, f: &Fields, addr: DocAddress) -> Result<FileView> {
    let doc: TantivyDocument = searcher.doc(addr).map_err(tantivy_err("reading a file"))?;
    Ok(FileView {
        repo: stored_str(&doc, f.repo).unwrap_or("").to_string(),
        path: stored_str(&doc, f.path).unwrap_or("").to_string(),
        lang: stored_str(&doc, f.lang).and_then(|l| l.parse::<Lang>().ok()),
        defs: stored_json(&doc, f.file_defs, "file definitions")?,
        refs: stored_str(&doc, f.file_refs).unwrap_or("").to_string(),
    })
}

/// The innermost definition whose lines hold `line`.
fn enclosing(defs: &[FileDef], line: u32) -> Option<&FileDef> {
    defs.iter()
        .filter(|d| d.line <= line && line <= d.end_line)
        .min_by_key(|d| (d.end_line - d.line, u32::MAX - d.line))
}

/// Checks a name given to `refs` or `impact`: one word of identifier characters.
fn check_name(name: &str) -> Result<&str> {
    let name = symbols::check_symbol_name(name)?;
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '$')))
    {
        return Err(Error::Query(format!(
            "{name:?} is not one name ({bad:?} is not part of a name); give a single identifier such as parse_query, without its path or arguments"
        )));
    }
    Ok(name)
}

/// The error for a name nothing defines or uses, with up to three names like it.
fn unknown_symbol(inner: &Inner, name: &str, repo: Option<&str>) -> Error {
    let like = symbols::symbol(
        inner,
        name,
        &SymbolOptions {
            kind: None,
            repo: repo.map(str::to_string),
            limit: 3,
        },
    )
    .unwrap_or_default();
    let names: BTreeSet<String> = like.into_iter().map(|h| h.name).collect();
    let scope = repo.map_or(String::from("the code index"), |r| {
        format!("repository {r:?}")
    });
    if names.is_empty() {
        Error::UnknownSymbol(format!(
            "nothing in {scope} defines or uses {name:?}; check the spelling (names are case-sensitive), or index the repository that has it"
        ))
    } else {
        let list: Vec<String> = names.into_iter().map(|n| format!("{n:?}")).collect();
        Error::UnknownSymbol(format!(
            "nothing in {scope} defines or uses {name:?} (names are case-sensitive); names like it: {}",
            list.join(", ")
        ))
    }
}

pub(crate) fn refs(inner: &Inner, name: &str, opts: &RefsOptions) -> Result<Refs> {
    let name = check_name(name)?;
    let searcher = inner.reader.searcher();
    let f = &inner.fields;
    if let Some(repo) = &opts.repo {
        require_repo(&searcher, f, repo)?;
    }
    let kinds: Vec<RefKind> = match opts.kind {
        Some(kind) => vec![kind],
        None => RefKind::ALL.to_vec(),
    };
    let definitions: Vec<_> = symbols::exact(inner, name, opts.repo.as_deref(), opts.limit)?;
    let found = candidates(&searcher, f, &[name], &kinds, opts.repo.as_deref())?;
    let mut counts = [0u64; 3];
    for c in &found {
        for (sum, n) in counts.iter_mut().zip(c.uses) {
            *sum += n;
        }
    }
    if definitions.is_empty() && found.is_empty() {
        // With a kind filter, the name may still be used some other way: say so rather than "unknown".
        if opts.kind.is_some() {
            let any = candidates(&searcher, f, &[name], &RefKind::ALL, opts.repo.as_deref())?;
            if !any.is_empty() {
                return Ok(Refs {
                    name: name.to_string(),
                    definitions,
                    uses: Vec::new(),
                    total: 0,
                    files: 0,
                    calls: 0,
                    types: 0,
                    imports: 0,
                });
            }
        }
        return Err(unknown_symbol(inner, name, opts.repo.as_deref()));
    }
    let mut uses = Vec::new();
    let cols = ChunkColumns::open(&searcher)?;
    for c in &found {
        if uses.len() >= opts.limit {
            break;
        }
        let file = read_file(&searcher, f, c.addr)?;
        // Snippets read only the chunks that hold the uses shown.
        let mut text = FileLines::new(&searcher, f, &cols, c.addr, &file.repo, &file.path);
        let mut lines: Vec<(u32, RefKind)> = Vec::new();
        for (kind, n, ls) in decode(&file.refs) {
            if n == name && kinds.contains(&kind) {
                lines.extend(ls.into_iter().map(|l| (l, kind)));
            }
        }
        lines.sort_unstable();
        for (line, kind) in lines {
            if uses.len() >= opts.limit {
                break;
            }
            uses.push(RefHit {
                repo: file.repo.clone(),
                path: file.path.clone(),
                line,
                kind,
                lang: file.lang,
                within: enclosing(&file.defs, line).map(|d| Enclosing {
                    name: d.name.clone(),
                    kind: d.kind,
                    line: d.line,
                }),
                snippet: text.snippet(line)?,
            });
        }
    }
    Ok(Refs {
        name: name.to_string(),
        definitions,
        uses,
        total: counts.iter().sum(),
        files: found.len() as u64,
        calls: counts[RefKind::Call as usize],
        types: counts[RefKind::Type as usize],
        imports: counts[RefKind::Import as usize],
    })
}

fn check_depth(depth: u32) -> Result<()> {
    if depth == 0 {
        return Err(Error::Query(
            "an impact depth of 0 follows nothing; use 1 for direct users, or more to follow their users"
                .to_string(),
        ));
    }
    if depth > MAX_IMPACT_DEPTH {
        return Err(Error::Query(format!(
            "an impact depth of {depth} is more than the most, {MAX_IMPACT_DEPTH}; beyond a few steps everything depends on everything"
        )));
    }
    Ok(())
}

/// Sorts the files (depth, most uses first, path), counts, and cuts to the limit.
fn finish_impact(
    target: ImpactTarget,
    depth: u32,
    mut files: Vec<ImpactFile>,
    limit: usize,
    truncated: bool,
) -> Impact {
    for file in &mut files {
        file.definitions
            .sort_by(|a, b| (a.depth, a.line, &a.name).cmp(&(b.depth, b.line, &b.name)));
    }
    files.sort_by(|a, b| {
        (a.depth, std::cmp::Reverse(a.uses), &a.repo, &a.path).cmp(&(
            b.depth,
            std::cmp::Reverse(b.uses),
            &b.repo,
            &b.path,
        ))
    });
    let total_files = files.len() as u64;
    let total_definitions = files.iter().map(|f| f.definitions.len() as u64).sum();
    let total_uses = files.iter().map(|f| f.uses).sum();
    files.truncate(limit);
    Impact {
        target,
        depth,
        files,
        total_files,
        total_definitions,
        total_uses,
        truncated,
    }
}

/// Whether `target` names a file of the index (then it is a file question) rather than a symbol.
fn as_file(inner: &Inner, repo: Option<&str>, target: &str) -> Option<(String, String)> {
    let looks_like_path = target.contains('/')
        || target.contains('\\')
        || std::path::Path::new(target)
            .extension()
            .and_then(|e| e.to_str())
            .and_then(Lang::from_extension)
            .is_some();
    if !looks_like_path {
        return None;
    }
    locate(inner, repo, target).ok()
}

pub(crate) fn impact(inner: &Inner, target: &str, opts: &ImpactOptions) -> Result<Impact> {
    check_depth(opts.depth)?;
    let target = target.trim();
    if target.is_empty() {
        return Err(Error::Query(
            "give a file (src/store.rs) or a symbol name (parse_query) to find what depends on it"
                .to_string(),
        ));
    }
    let searcher = inner.reader.searcher();
    if let Some(repo) = &opts.repo {
        require_repo(&searcher, &inner.fields, repo)?;
    }
    match as_file(inner, opts.repo.as_deref(), target) {
        Some((repo, path)) => file_impact(inner, &searcher, repo, path, opts),
        None => {
            let looks_like_path = target.contains('/') || target.contains('.');
            match check_name(target) {
                Ok(name) => symbol_impact(inner, &searcher, name, opts),
                Err(_) if looks_like_path => Err(Error::UnknownFile(format!(
                    "{target} is not a file of any indexed repository (and not a symbol name); give a path relative to a repository root, as /outline takes it"
                ))),
                Err(e) => Err(e),
            }
        }
    }
}

/// The key files go by while walking: (repo, path).
type FileKey = (String, String);

fn file_impact(
    inner: &Inner,
    searcher: &Searcher,
    repo: String,
    path: String,
    opts: &ImpactOptions,
) -> Result<Impact> {
    let f = &inner.fields;
    // The names the file defines: their uses in the importers are what may break.
    let own = inner_file(searcher, f, &repo, &path)?;
    let names: BTreeSet<String> = own
        .as_ref()
        .map(|v| v.defs.iter().map(|d| d.name.clone()).collect())
        .unwrap_or_default();
    let (graph, _) = super::graph::load(inner, &repo)?;
    let importers = graph.importers_of(Target::File(path.clone()), opts.depth as usize);
    let mut files = Vec::new();
    let mut truncated = false;
    for (importer, d) in importers {
        if files.len() >= MAX_IMPACT_FILES {
            truncated = true;
            break;
        }
        let mut file = ImpactFile {
            repo: repo.clone(),
            path: importer.clone(),
            depth: u32::try_from(d).unwrap_or(u32::MAX),
            uses: 0,
            definitions: Vec::new(),
        };
        // Direct importers say which of the file's names they use, and where.
        if d == 1 {
            if let Some(view) = inner_file(searcher, f, &repo, &importer)? {
                let mut per_def: BTreeMap<(u32, String), (crate::model::SymbolKind, u32)> =
                    BTreeMap::new();
                for (_, n, lines) in decode(&view.refs) {
                    if !names.contains(n) {
                        continue;
                    }
                    file.uses += lines.len() as u64;
                    for line in lines {
                        if let Some(def) = enclosing(&view.defs, line) {
                            per_def
                                .entry((def.line, def.name.clone()))
                                .or_insert((def.kind, 0))
                                .1 += 1;
                        }
                    }
                }
                file.definitions = per_def
                    .into_iter()
                    .map(|((line, name), (kind, uses))| ImpactDef {
                        name,
                        kind,
                        line,
                        uses,
                        depth: 1,
                    })
                    .collect();
            }
        }
        files.push(file);
    }
    Ok(finish_impact(
        ImpactTarget::File { repo, path },
        opts.depth,
        files,
        opts.limit,
        truncated,
    ))
}

/// The file document of (repo, path), if the index has it.
fn inner_file(searcher: &Searcher, f: &Fields, repo: &str, path: &str) -> Result<Option<FileView>> {
    match symbols::file_doc(searcher, f, repo, path)? {
        Some(addr) => read_file(searcher, f, addr).map(Some),
        None => Ok(None),
    }
}

/// The most distinct names one step of a symbol's impact follows; the walk says it is truncated beyond.
const MAX_NAMES_PER_STEP: usize = 512;

fn symbol_impact(
    inner: &Inner,
    searcher: &Searcher,
    name: &str,
    opts: &ImpactOptions,
) -> Result<Impact> {
    let f = &inner.fields;
    let repo = opts.repo.as_deref();
    let mut files: BTreeMap<FileKey, ImpactFile> = BTreeMap::new();
    // Definitions already counted, by (repo, path, line, name): each is reported at its fewest steps.
    let mut seen_defs: BTreeSet<(String, String, u32, String)> = BTreeSet::new();
    let mut followed: BTreeSet<String> = BTreeSet::from([name.to_string()]);
    let mut frontier: Vec<String> = vec![name.to_string()];
    let mut read = 0usize;
    let mut truncated = false;
    let mut any_use = false;
    for depth in 1..=opts.depth {
        if frontier.is_empty() {
            break;
        }
        let wanted: BTreeSet<&str> = frontier.iter().map(String::as_str).collect();
        let names: Vec<&str> = wanted.iter().copied().collect();
        let found = candidates(searcher, f, &names, &RefKind::ALL, repo)?;
        let mut next: BTreeSet<String> = BTreeSet::new();
        for c in found {
            if read >= MAX_IMPACT_FILES {
                truncated = true;
                break;
            }
            read += 1;
            any_use = true;
            let view = read_file(searcher, f, c.addr)?;
            let key = (view.repo.clone(), view.path.clone());
            let entry = files.entry(key).or_insert_with(|| ImpactFile {
                repo: view.repo.clone(),
                path: view.path.clone(),
                depth,
                uses: 0,
                definitions: Vec::new(),
            });
            let mut per_def: BTreeMap<(u32, String), (crate::model::SymbolKind, u32)> =
                BTreeMap::new();
            for (_, n, lines) in decode(&view.refs) {
                if !wanted.contains(n) {
                    continue;
                }
                entry.uses += lines.len() as u64;
                for line in lines {
                    if let Some(def) = enclosing(&view.defs, line) {
                        // A definition of the name itself (recursion, an overload) is the target, not a user.
                        if def.name == name {
                            continue;
                        }
                        per_def
                            .entry((def.line, def.name.clone()))
                            .or_insert((def.kind, 0))
                            .1 += 1;
                    }
                }
            }
            for ((line, def_name), (kind, uses)) in per_def {
                if !seen_defs.insert((view.repo.clone(), view.path.clone(), line, def_name.clone()))
                {
                    continue;
                }
                if !followed.contains(&def_name) {
                    next.insert(def_name.clone());
                }
                entry.definitions.push(ImpactDef {
                    name: def_name,
                    kind,
                    line,
                    uses,
                    depth,
                });
            }
        }
        if truncated {
            break;
        }
        if next.len() > MAX_NAMES_PER_STEP {
            truncated = true;
        }
        frontier = next.into_iter().take(MAX_NAMES_PER_STEP).collect();
        followed.extend(frontier.iter().cloned());
    }
    if !any_use && symbols::exact(inner, name, repo, 1)?.is_empty() {
        return Err(unknown_symbol(inner, name, repo));
    }
    Ok(finish_impact(
        ImpactTarget::Symbol {
            name: name.to_string(),
        },
        opts.depth,
        files.into_values().collect(),
        opts.limit,
        truncated,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_round_trips() {
        let refs = vec![
            Reference {
                name: "parse".into(),
                kind: RefKind::Call,
                line: 3,
            },
            Reference {
                name: "parse".into(),
                kind: RefKind::Call,
                line: 9,
            },
            Reference {
                name: "Config".into(),
                kind: RefKind::Type,
                line: 1,
            },
        ];
        let text = encode(&refs);
        assert_eq!(text, "c\tparse\t3,9\nt\tConfig\t1\n");
        let back: Vec<(RefKind, String, Vec<u32>)> = decode(&text)
            .map(|(k, n, l)| (k, n.to_string(), l))
            .collect();
        assert_eq!(
            back,
            vec![
                (RefKind::Call, "parse".to_string(), vec![3, 9]),
                (RefKind::Type, "Config".to_string(), vec![1]),
            ]
        );
        assert_eq!(decode("x\tbad\t1\nc\tonly-two\n").count(), 0);
    }

    #[test]
    fn the_innermost_definition_encloses_a_line() {
        let defs = vec![
            FileDef {
                name: "Parser".into(),
                kind: crate::model::SymbolKind::Impl,
                line: 1,
                end_line: 20,
            },
            FileDef {
                name: "parse".into(),
                kind: crate::model::SymbolKind::Method,
                line: 5,
                end_line: 9,
            },
        ];
        assert_eq!(enclosing(&defs, 6).map(|d| d.name.as_str()), Some("parse"));
        assert_eq!(
            enclosing(&defs, 12).map(|d| d.name.as_str()),
            Some("Parser")
        );
        assert!(enclosing(&defs, 30).is_none());
    }
}
