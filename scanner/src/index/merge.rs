//! Merging segments at the end of an indexing run, so that opening the index for a search touches few files.
//!
//! Every commit writes at least one new segment, and a segment is several files (terms, postings, positions, stored
//! documents, fast fields, field norms, deletions) that a reader opens and maps before it can answer anything. A
//! command-line search is a fresh process, so it pays for every segment on each query. Tantivy's merge policy runs
//! merges in the background, after a commit; a process that exits right after its commit (`dreamos index`) drops
//! them unfinished. So a run ends by merging in the foreground, after its commit: a merge that fails leaves the
//! segments as they were and the run's commit stands.
//!
//! Which segments merge is Tantivy's log merge policy, from two segments up rather than eight: segments of about the
//! same size merge, and all small ones (under 10,000 documents) merge together. Like a binary counter, a document is
//! rewritten about log2(runs) times over the life of the index rather than on every run, a run that changed little
//! merges only small segments, and an index of N similar runs keeps at most about log2(N) + 1 segments. A segment whose
//! documents are more than a third deleted (files indexed again elsewhere) is rewritten too.
//!
//! Then an index of at most [`ONE_SEGMENT_DOCS`] documents is made one segment. Each segment a search opens costs a
//! fresh process its files, maps and dictionary lookups: on the 1 M-line, 7-repository index of the process benchmark,
//! `dreamos search` took 2.87 ms over one segment against 3.21 ms over the three the log policy leaves, and merging
//! the three took 0.55 s. Past that size, rewriting the whole index on every run would cost more than it saves.

use tantivy::indexer::{LogMergePolicy, MergePolicy};
use tantivy::IndexWriter;

use super::Inner;

/// Rounds of merging at most: a merge can make a segment the size of another, which then merges with it.
const MAX_ROUNDS: usize = 8;

/// An index of at most this many documents (files, their chunks and symbols: about 2.5 M lines of code) ends every
/// run as one segment.
const ONE_SEGMENT_DOCS: u64 = 500_000;

/// The policy that picks what to merge at the end of a run.
fn policy() -> LogMergePolicy {
    let mut policy = LogMergePolicy::default();
    policy.set_min_num_segments(2);
    policy.set_del_docs_ratio_before_merge(1.0 / 3.0);
    policy
}

/// Merges committed segments as [`policy`] picks them, waiting for each merge; returns how many merges ran.
/// Failures are logged and end the merging: the index stays valid and searchable without them.
pub(crate) fn settle(inner: &Inner, writer: &mut IndexWriter) -> usize {
    let policy = policy();
    let mut merges = 0;
    for _ in 0..MAX_ROUNDS {
        let metas = match inner.index.searchable_segment_metas() {
            Ok(metas) => metas,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list the index's segments; not merging them");
                return merges;
            }
        };
        let candidates = policy.compute_merge_candidates(&metas);
        if candidates.is_empty() {
            break;
        }
        for candidate in candidates {
            // A background merge of Tantivy's own policy may hold some of these segments; then this merge fails,
            // which costs nothing but the attempt.
            if let Err(err) = writer.merge(&candidate.0).wait() {
                tracing::debug!(error = %err, "merging segments failed; leaving them as they are");
                return merges;
            }
            merges += 1;
        }
    }
    let Ok(metas) = inner.index.searchable_segment_metas() else {
        return merges;
    };
    let docs: u64 = metas.iter().map(|m| u64::from(m.num_docs())).sum();
    if metas.len() > 1 && docs <= ONE_SEGMENT_DOCS {
        let all: Vec<_> = metas.iter().map(|m| m.id()).collect();
        match writer.merge(&all).wait() {
            Ok(_) => merges += 1,
            Err(err) => {
                tracing::debug!(error = %err, "merging the index into one segment failed; leaving it as it is")
            }
        }
    }
    merges
}

/// Deletes the files of segments that merges replaced. Tantivy keeps every file a live searcher may still read, so
/// this runs after the reader has reloaded; before it, the merged-away files would stay on disk (twice the index)
/// until the next commit.
pub(crate) fn collect_garbage(writer: &IndexWriter) {
    if let Err(err) = writer.garbage_collect_files().wait() {
        tracing::debug!(error = %err, "removing merged-away segment files failed; the next commit retries");
    }
}

#[cfg(test)]
mod tests {
    use super::super::search::tests::{write_made_repo, write_repo};
    use super::super::{CodeIndex, IndexOptions, SearchOptions};

    fn segments(index: &CodeIndex) -> usize {
        index
            .inner
            .index
            .searchable_segment_ids()
            .expect("segment ids")
            .len()
    }

    fn hits(index: &CodeIndex, query: &str) -> usize {
        index
            .search(query, &SearchOptions::default())
            .expect("search")
            .len()
    }

    #[test]
    fn every_run_ends_with_its_small_segments_merged() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = CodeIndex::open(dir.path()).expect("open");
        let repos: Vec<_> = (0..4)
            .map(|i| write_repo(&[("a.rs", &format!("fn merged_{i}() {{}}\nfn common() {{}}\n"))]))
            .collect();
        for (i, repo) in repos.iter().enumerate() {
            index
                .index_repo(
                    &format!("r{i}"),
                    repo.path(),
                    &IndexOptions::default(),
                    &|_| {},
                )
                .expect("index");
            assert_eq!(segments(&index), 1, "after run {i}");
        }
        // A changed file deletes its old documents; the merge at the end of the run drops them for good.
        std::fs::write(
            repos[0].path().join("a.rs"),
            "fn merged_0() {}\nfn common() {}\nfn more() {}\n",
        )
        .expect("write");
        index
            .index_repo("r0", repos[0].path(), &IndexOptions::default(), &|_| {})
            .expect("index again");
        assert_eq!(segments(&index), 1);
        // The merged-away segments' files are gone from the directory: one segment's files are left.
        let prefixes: std::collections::BTreeSet<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.') && n != "meta.json")
            .filter_map(|n| n.split('.').next().map(str::to_string))
            .collect();
        assert_eq!(prefixes.len(), 1, "{prefixes:?}");
        // Merged, nothing lost: every repository still answers, and only live documents remain.
        assert_eq!(hits(&index, "common"), 4);
        assert_eq!(hits(&index, "more"), 1);
        for i in 0..4 {
            assert_eq!(hits(&index, &format!("merged_{i}")), 1);
        }
        let searcher = index.inner.reader.searcher();
        assert_eq!(
            searcher.num_docs(),
            searcher
                .segment_readers()
                .iter()
                .map(|s| u64::from(s.max_doc()))
                .sum::<u64>(),
            "deleted documents are gone after the merge"
        );
    }

    /// Runs of more documents than the log policy merges as small ones still end as one segment while the whole
    /// index is small.
    #[test]
    fn a_small_index_of_large_runs_is_one_segment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let index = CodeIndex::open(dir.path()).expect("open");
        // 12,000 one-line functions a run: 12,000 symbol documents, past the log policy's 10,000 for a small segment.
        let body = |run: usize| -> String {
            (0..12_000)
                .map(|i| format!("fn f{run}_{i}() {{}}\n"))
                .collect()
        };
        let repos: Vec<_> = (0..3)
            .map(|run| write_made_repo(&[("big.rs".to_string(), body(run))]))
            .collect();
        for (run, repo) in repos.iter().enumerate() {
            index
                .index_repo(
                    &format!("r{run}"),
                    repo.path(),
                    &IndexOptions::default(),
                    &|_| {},
                )
                .expect("index");
            assert_eq!(segments(&index), 1, "after run {run}");
        }
        for run in 0..3 {
            assert_eq!(hits(&index, &format!("f{run}_11999")), 1);
        }
    }

    #[test]
    fn a_run_with_checkpoints_ends_as_one_segment() {
        let files: Vec<(String, String)> = (0..9)
            .map(|i| (format!("f{i}.rs"), format!("fn checkpointed_{i}() {{}}\n")))
            .collect();
        let repo = write_made_repo(&files);
        let dir = tempfile::tempdir().expect("temp dir");
        let index = CodeIndex::open(dir.path()).expect("open");
        let opts = IndexOptions {
            commit_every: 2,
            ..IndexOptions::default()
        };
        index
            .index_repo("r", repo.path(), &opts, &|_| {})
            .expect("index");
        assert_eq!(segments(&index), 1);
        for i in 0..9 {
            assert_eq!(hits(&index, &format!("checkpointed_{i}")), 1);
        }
    }
}
