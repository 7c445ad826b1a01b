//! The code skills: `scan`, `search`, `symbol`, `outline`, `deps`, `refs` and `impact`, each a thin layer over
//! [`Code`].
//!
//! A message's body text is the skill's main argument (a path, a query, a name); other options come as body
//! fields (`{"text": "parse_config", "kind": "function", "limit": 5}`). Bad input from the sender (a malformed
//! query, an unknown file) is answered with an error reply and the message counts as handled: retrying it would
//! fail the same way. Failures of the index itself are skill errors, retried and then dead-lettered.

use std::sync::Arc;

use async_trait::async_trait;
use dreamos_scanner::IndexProgress;
use serde_json::{json, Value};

use crate::{
    code::{Code, SearchRequest},
    skill::{Skill, SkillContext, SkillError, SkillRegistry},
};

/// Registers every code skill over `code`.
pub fn register(registry: &mut SkillRegistry, code: &Code) {
    for skill in [
        CodeSkill::Scan,
        CodeSkill::Search,
        CodeSkill::Symbol,
        CodeSkill::Outline,
        CodeSkill::Deps,
        CodeSkill::Refs,
        CodeSkill::Impact,
    ] {
        registry.add(Arc::new(CodeSkillImpl {
            skill,
            code: code.clone(),
        }));
    }
}

#[derive(Clone, Copy)]
enum CodeSkill {
    Scan,
    Search,
    Symbol,
    Outline,
    Deps,
    Refs,
    Impact,
}

struct CodeSkillImpl {
    skill: CodeSkill,
    code: Code,
}

/// The body's options beside its text.
struct Options(Value);

impl Options {
    fn str(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(Value::as_str).map(str::to_string)
    }

    fn usize(&self, key: &str) -> Option<usize> {
        self.0.get(key).and_then(Value::as_u64).map(|n| n as usize)
    }
}

#[async_trait]
impl Skill for CodeSkillImpl {
    fn name(&self) -> &'static str {
        match self.skill {
            CodeSkill::Scan => "scan",
            CodeSkill::Search => "search",
            CodeSkill::Symbol => "symbol",
            CodeSkill::Outline => "outline",
            CodeSkill::Deps => "deps",
            CodeSkill::Refs => "refs",
            CodeSkill::Impact => "impact",
        }
    }

    fn summary(&self) -> &'static str {
        match self.skill {
            CodeSkill::Scan => "index the repository at PATH (under the allowed roots)",
            CodeSkill::Search => {
                "search indexed code: foo lang:rust path:src/*.rs /regex/ \"phrase\""
            }
            CodeSkill::Symbol => "find definitions by name (exact, then prefix, then fuzzy)",
            CodeSkill::Outline => "list the definitions of a file",
            CodeSkill::Deps => "what a file imports and what imports it",
            CodeSkill::Refs => "where a name is used (calls, types, imports), definitions first",
            CodeSkill::Impact => "what may break if a file or a name changes",
        }
    }

    async fn run(&self, cx: &mut SkillContext<'_>) -> Result<(), SkillError> {
        let text = cx.text().trim().to_string();
        let options = Options(cx.message().body.to_value());
        let answer = match self.skill {
            CodeSkill::Scan => self
                .scan(cx, &text, options.str("name").as_deref())
                .await
                .map(|r| {
                    cx.journal(
                        dreamos_runtime::config::JournalTopic::Indexing,
                        &["indexing"],
                        format!(
                            "indexed {}: {} files, {:.1} MB in {:.1} s ({} added, {} changed, {} deleted, {} unchanged; {} symbols)",
                            r.repo,
                            r.files,
                            r.bytes as f64 / 1e6,
                            r.seconds,
                            r.added,
                            r.changed,
                            r.deleted,
                            r.unchanged,
                            r.symbols
                        ),
                    );
                    json!({
                        "text": format!(
                            "indexed {}: {} files ({} changed, {} added, {} deleted), {} symbols in {:.2}s",
                            r.repo, r.files, r.changed, r.added, r.deleted, r.symbols, r.seconds
                        ),
                        "report": r,
                    })
                }),
            CodeSkill::Search => self
                .code
                .search(SearchRequest {
                    query: text,
                    lang: options.str("lang"),
                    path: options.str("path"),
                    repo: options.str("repo"),
                    limit: options.usize("limit"),
                })
                .await
                .map(|hits| {
                    fitted(hits.len(), self.max_body(cx), |n| {
                        let lines: Vec<String> = hits[..n]
                            .iter()
                            .map(|h| format!("{}/{}:{}", h.repo, h.path, h.line))
                            .collect();
                        json!({ "text": summary(n, "hit", &lines), "hits": &hits[..n] })
                    })
                }),
            CodeSkill::Symbol => self
                .code
                .symbol(
                    &text,
                    options.str("kind").as_deref(),
                    options.str("repo"),
                    options.usize("limit"),
                )
                .await
                .map(|hits| {
                    fitted(hits.len(), self.max_body(cx), |n| {
                        let lines: Vec<String> = hits[..n]
                            .iter()
                            .map(|h| format!("{:?} {} at {}/{}:{}", h.kind, h.name, h.repo, h.path, h.line))
                            .collect();
                        json!({ "text": summary(n, "definition", &lines), "symbols": &hits[..n] })
                    })
                }),
            CodeSkill::Outline => self
                .code
                .outline(options.str("repo"), &text)
                .await
                .map(|(repo, path, definitions)| {
                    fitted(definitions.len(), self.max_body(cx), |n| {
                        let lines: Vec<String> = definitions[..n]
                            .iter()
                            .map(|d| format!("{}: {:?} {}", d.line, d.kind, d.name))
                            .collect();
                        json!({
                            "text": summary(n, "definition", &lines),
                            "repo": repo,
                            "path": path,
                            "definitions": &definitions[..n],
                        })
                    })
                }),
            CodeSkill::Deps => self
                .code
                .deps(
                    options.str("repo"),
                    &text,
                    options.usize("depth").unwrap_or(1) as u32,
                )
                .await
                .map(|deps| {
                    json!({
                        "text": format!(
                            "{} imports {} files and {} external modules; {} files import it",
                            deps.path,
                            deps.imports.len(),
                            deps.external.len(),
                            deps.importers.len()
                        ),
                        "deps": deps,
                    })
                }),
            CodeSkill::Refs => self
                .code
                .refs(
                    &text,
                    options.str("kind").as_deref(),
                    options.str("repo"),
                    options.usize("limit"),
                )
                .await
                .map(|refs| {
                    fitted(refs.uses.len(), self.max_body(cx), |n| {
                        let lines: Vec<String> = refs
                            .definitions
                            .iter()
                            .map(|d| format!("defined: {:?} {} at {}/{}:{}", d.kind, d.name, d.repo, d.path, d.line))
                            .chain(refs.uses[..n].iter().map(|u| {
                                let within = u
                                    .within
                                    .as_ref()
                                    .map(|w| format!(" in {}", w.name))
                                    .unwrap_or_default();
                                format!("{} at {}/{}:{}{within}", u.kind, u.repo, u.path, u.line)
                            }))
                            .collect();
                        json!({
                            "text": format!(
                                "{} uses of {} in {} files ({} calls, {} types, {} imports); {}",
                                refs.total, refs.name, refs.files, refs.calls, refs.types, refs.imports,
                                summary(lines.len(), "line", &lines)
                            ),
                            "name": refs.name,
                            "definitions": refs.definitions,
                            "uses": &refs.uses[..n],
                            "total": refs.total,
                            "files": refs.files,
                        })
                    })
                }),
            CodeSkill::Impact => self
                .code
                .impact(
                    &text,
                    options.str("repo"),
                    options.usize("depth").unwrap_or(2).min(u32::MAX as usize) as u32,
                    options.usize("limit"),
                )
                .await
                .map(|impact| {
                    fitted(impact.files.len(), self.max_body(cx), |n| {
                        let lines: Vec<String> = impact.files[..n]
                            .iter()
                            .map(|f| {
                                let defs: Vec<&str> =
                                    f.definitions.iter().map(|d| d.name.as_str()).collect();
                                format!(
                                    "{}/{} (step {}, {} uses){}",
                                    f.repo,
                                    f.path,
                                    f.depth,
                                    f.uses,
                                    if defs.is_empty() { String::new() } else { format!(": {}", defs.join(", ")) }
                                )
                            })
                            .collect();
                        json!({
                            "text": format!(
                                "{} files and {} definitions may be affected; {}",
                                impact.total_files, impact.total_definitions,
                                summary(n, "file", &lines)
                            ),
                            "target": impact.target,
                            "depth": impact.depth,
                            "files": &impact.files[..n],
                            "total_files": impact.total_files,
                            "total_definitions": impact.total_definitions,
                            "truncated": impact.truncated,
                        })
                    })
                }),
        };
        match answer {
            Ok(body) => cx.reply(body),
            // Stopped by the shutdown: no answer now, the message is handled again after the restart.
            Err(
                err @ (crate::Error::Scanner(dreamos_scanner::Error::Cancelled)
                | crate::Error::ShuttingDown),
            ) => Err(SkillError::from(err)),
            // The sender's mistake, in a task: it fails at once, with the reason, and is not retried.
            Err(err) if !err.is_internal() && cx.task().is_some() => {
                Err(SkillError::permanent(err.to_string()))
            }
            // The sender's mistake: answer it, and do not retry what will fail the same way.
            Err(err) if !err.is_internal() => cx.reply(json!({
                "text": format!("error: {err}"),
                "error": { "kind": err.kind(), "message": err.to_string() },
            })),
            Err(err) => Err(SkillError::from(err)),
        }
    }
}

impl CodeSkillImpl {
    /// Indexes a repository. As a task it reports files read and indexed as progress and saves a checkpoint at
    /// each of the run's commits; after a crash the next run skips the committed files (the index's manifest
    /// knows them), and its progress says how many the interrupted run had committed.
    async fn scan(
        &self,
        cx: &mut SkillContext<'_>,
        path: &str,
        name: Option<&str>,
    ) -> crate::Result<dreamos_scanner::IndexReport> {
        if cx.task().is_none() {
            return self.code.index(path, name).await;
        }
        if let Some(files) = cx.resumed_from().and_then(|c| c["committed"].as_u64()) {
            cx.progress(
                None,
                &format!("resuming: the interrupted run had committed {files} files"),
            );
        }
        let (tx, mut rx) = tokio::sync::watch::channel(None);
        let run = self.code.index_tracked(path, name, move |p| {
            let _ = tx.send(Some(p));
        });
        tokio::pin!(run);
        loop {
            tokio::select! {
                report = &mut run => return report,
                changed = rx.changed() => {
                    if changed.is_err() {
                        return run.await;
                    }
                    let progress = *rx.borrow_and_update();
                    match progress {
                        Some(IndexProgress::Files { read, indexed, total }) => {
                            // The last percent is the commit's.
                            let percent = (read * 98).checked_div(total).unwrap_or(0).min(98) as u8;
                            cx.progress(
                                Some(percent),
                                &format!("read {read} of {total} files, {indexed} new or changed indexed"),
                            );
                        }
                        Some(IndexProgress::Committed { files }) => {
                            cx.progress(None, &format!("committed {files} files"));
                            if let Err(err) = cx.checkpoint(json!({ "committed": files })).await {
                                tracing::warn!(error = %err, "the index's checkpoint was not saved");
                            }
                        }
                        Some(IndexProgress::Committing) => cx.progress(Some(99), "committing"),
                        None => {}
                    }
                }
            }
        }
    }

    /// The largest reply body the swarm accepts (`messages.max_body_bytes`).
    fn max_body(&self, cx: &SkillContext<'_>) -> usize {
        cx.max_body_bytes()
    }
}

/// A reply made of the first `n` of `total` items, for the largest `n` whose JSON fits in `max` bytes; when items
/// had to go, it says how many (`truncated`). A reply too big for the message log would fail again on every
/// retry and end as a dead letter, so it is cut here instead.
fn fitted(total: usize, max: usize, make: impl Fn(usize) -> Value) -> Value {
    let fits = |v: &Value| v.to_string().len() + 1024 <= max;
    let whole = make(total);
    if fits(&whole) {
        return whole;
    }
    // The largest n that fits, by bisection: each try serializes one candidate reply.
    let (mut lo, mut hi) = (0usize, total);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(&make(mid)) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut body = make(lo);
    body["truncated"] = json!(total - lo);
    if let Some(text) = body["text"].as_str().map(str::to_string) {
        body["text"] = json!(format!(
            "{text}\n  ({} more left out to keep the reply under {max} bytes; ask with a smaller limit)",
            total - lo
        ));
    }
    body
}

fn summary(count: usize, what: &str, lines: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = format!("{count} {what}{}", if count == 1 { "" } else { "s" });
    for line in lines.iter().take(SHOWN) {
        text.push_str("\n  ");
        text.push_str(line);
    }
    if lines.len() > SHOWN {
        text.push_str(&format!("\n  … and {} more", lines.len() - SHOWN));
    }
    text
}
