//! Semantic recall: with a model tagged `embeddings` configured, `/recall` ranks by BM25 and by embedding
//! similarity together, with reciprocal rank fusion (each list gives an entry `1 / (RRF_K + rank)`); without one,
//! BM25 alone and nothing else changes.
//!
//! Entry vectors are derived data, like the search index: kept in runtime's `memory_vectors` tree and made when
//! a recall needs them. One embeddings request per recall carries the query and the newest entries that have no
//! vector yet (at most [`EMBED_PER_RECALL`]), and is recorded in the token ledger. Similarity is the cosine over
//! the newest [`SCAN`] entries that pass the recall's filters; a model that fails leaves the recall to BM25, with
//! a warning.

use std::collections::HashMap;

use dreamos_runtime::{
    config::LlmModelConfig,
    memory::{Entry, EntryId, EntryVector, VectorStore},
};

use super::{index::Filters, Hit, Memory, RecallQuery, Recalled};
use crate::llm::{Caller, Llm};

/// The constant of reciprocal rank fusion (the usual 60).
pub const RRF_K: f32 = 60.0;
/// Entries embedded at most by one recall, besides the query.
pub const EMBED_PER_RECALL: usize = 64;
/// The newest entries compared with the query.
pub const SCAN: usize = 10_000;
/// Candidates taken from each list before fusing.
pub(super) const DEPTH: usize = 50;
/// The most characters of an entry's text shown for a hit found by similarity alone.
const SNIPPET: usize = 160;

/// The embeddings side of recall.
pub struct Semantic {
    pub llm: Llm,
    pub model: LlmModelConfig,
    pub vectors: VectorStore,
}

/// Whether `entry` passes the recall's filters, as the index applies them.
fn passes(entry: &Entry, f: &Filters) -> bool {
    let author_ok = f.author.as_ref().is_none_or(|a| {
        entry.author.key() == *a
            || matches!(&entry.author, dreamos_runtime::memory::Author::Person { name, .. } if name == a)
    });
    author_ok
        && f.agent
            .as_ref()
            .is_none_or(|a| entry.agents().any(|x| x == a))
        && f.kind.as_ref().is_none_or(|k| entry.kind.as_str() == k)
        && f.tags.iter().all(|t| entry.tags.contains(t))
        && f.since.is_none_or(|s| entry.at() >= s)
        && f.until.is_none_or(|u| entry.at() < u)
        && f.task
            .is_none_or(|t| entry.links.tasks.iter().any(|x| x.0 == t))
        && f.message
            .as_ref()
            .is_none_or(|m| entry.links.messages.iter().any(|x| x.to_string() == *m))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Fuses ranked lists of ids: `1 / (RRF_K + rank)` summed over the lists, rank counted from 1; best first, ties
/// by the order of the first list.
pub fn fuse(lists: &[Vec<EntryId>]) -> Vec<(EntryId, f32)> {
    let mut scores: HashMap<EntryId, (f32, usize)> = HashMap::new();
    let mut order = 0;
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            let slot = scores.entry(*id).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            slot.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut fused: Vec<(EntryId, f32, usize)> =
        scores.into_iter().map(|(id, (s, o))| (id, s, o)).collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    fused.into_iter().map(|(id, s, _)| (id, s)).collect()
}

impl Semantic {
    /// The newest entries passing the filters, with the vectors this model made of them, embedding those that
    /// have none (up to [`EMBED_PER_RECALL`]) in the same request as the query. `None` when the model fails.
    async fn similar(
        &self,
        memory: &Memory,
        query: &RecallQuery,
    ) -> crate::Result<Option<Vec<(EntryId, f32)>>> {
        let mut candidates: Vec<(Entry, Option<Vec<f32>>)> = Vec::new();
        for entry in memory.inner.store.newest_first(None).take(SCAN) {
            let entry = entry?;
            if !passes(&entry, &query.filters) {
                continue;
            }
            let vector = self
                .vectors
                .get(entry.id)?
                .filter(|v| v.model == self.model.name)
                .map(|v| v.vector);
            candidates.push((entry, vector));
        }
        let missing: Vec<usize> = candidates
            .iter()
            .enumerate()
            .filter(|(_, (_, v))| v.is_none())
            .map(|(i, _)| i)
            .take(EMBED_PER_RECALL)
            .collect();
        let mut inputs = vec![query.words.clone()];
        inputs.extend(missing.iter().map(|&i| candidates[i].0.text.clone()));
        let caller = Caller {
            person: None,
            agent: None,
            task: None,
            frontend: Some("memory".to_string()),
        };
        let embedded = match self.llm.embed(&caller, &self.model, &inputs).await {
            Ok(e) if e.vectors.len() == inputs.len() => e,
            Ok(e) => {
                tracing::warn!(
                    model = %self.model.name,
                    asked = inputs.len(),
                    got = e.vectors.len(),
                    "the embeddings model answered a different number of vectors; recalling by BM25 alone"
                );
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!(model = %self.model.name, error = %e, "embeddings failed; recalling by BM25 alone");
                return Ok(None);
            }
        };
        let mut vectors = embedded.vectors.into_iter();
        let query_vector = vectors.next().unwrap_or_default();
        for (&i, vector) in missing.iter().zip(vectors) {
            self.vectors.put(
                candidates[i].0.id,
                &EntryVector {
                    model: self.model.name.clone(),
                    vector: vector.clone(),
                },
            )?;
            candidates[i].1 = Some(vector);
        }
        let mut scored: Vec<(EntryId, f32)> = candidates
            .iter()
            .filter_map(|(e, v)| v.as_ref().map(|v| (e.id, cosine(&query_vector, v))))
            .filter(|(_, s)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.truncate(DEPTH);
        Ok(Some(scored))
    }

    /// `bm25` (found with a limit of at least [`DEPTH`]) fused with the similarity ranking, cut to `limit`.
    pub async fn fuse_with(
        &self,
        memory: &Memory,
        query: &RecallQuery,
        bm25: Recalled,
        limit: usize,
    ) -> crate::Result<Recalled> {
        let Some(similar) = self.similar(memory, query).await? else {
            return Ok(Recalled {
                hits: bm25.hits.into_iter().take(limit).collect(),
                ..bm25
            });
        };
        let words: Vec<EntryId> = bm25.hits.iter().map(|h| h.entry.id).collect();
        let near: Vec<EntryId> = similar.iter().map(|(id, _)| *id).collect();
        let matched =
            bm25.matched.max(words.len()) + near.iter().filter(|id| !words.contains(id)).count();
        let mut by_id: HashMap<EntryId, Hit> =
            bm25.hits.into_iter().map(|h| (h.entry.id, h)).collect();
        let mut hits = Vec::with_capacity(limit);
        for (id, score) in fuse(&[words, near]).into_iter().take(limit) {
            let hit = match by_id.remove(&id) {
                Some(hit) => Hit { score, ..hit },
                None => match memory.inner.store.get(id)? {
                    Some(entry) => Hit {
                        snippet: entry.text.chars().take(SNIPPET).collect(),
                        entry,
                        score,
                    },
                    None => continue,
                },
            };
            hits.push(hit);
        }
        Ok(Recalled {
            hits,
            matched,
            took_ms: bm25.took_ms,
            ranked_by: "bm25+embeddings",
        })
    }
}
