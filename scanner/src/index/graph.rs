//! Dependency questions answered from the index: a file's imports and importers to a depth, and import cycles.
//!
//! Resolved targets live on each file's small `info` document (see [`super::writer`]), so the whole graph of a
//! repository is read without touching file contents, then handed to [`crate::deps::DepGraph`].

use std::collections::BTreeMap;

use super::symbols::{locate, require_repo};
use super::writer::targets_of_repo;
use super::{DepEdge, Deps, Inner};
use crate::deps::{DepGraph, Target};
use crate::error::{Error, Result};

/// The repository's graph, and each file's external imports.
pub(crate) fn load(inner: &Inner, repo: &str) -> Result<(DepGraph, BTreeMap<String, Vec<String>>)> {
    let all = targets_of_repo(inner, repo)?;
    let mut edges = Vec::new();
    let mut external = BTreeMap::new();
    for (path, (targets, ext)) in all {
        edges.extend(targets.into_iter().map(|t| (path.clone(), Target::File(t))));
        edges.extend(
            ext.iter()
                .map(|e| (path.clone(), Target::External(e.clone()))),
        );
        external.insert(path, ext);
    }
    Ok((DepGraph::new(edges), external))
}

pub(crate) fn deps(inner: &Inner, repo: Option<&str>, path: &str, depth: u32) -> Result<Deps> {
    if depth == 0 {
        return Err(Error::Query(
            "a dependency depth of 0 follows nothing; use 1 for direct imports and importers"
                .to_string(),
        ));
    }
    let (repo, rel) = locate(inner, repo, path)?;
    let (graph, external) = load(inner, &repo)?;
    let depth = depth as usize;
    let edge = |path: String, d: usize| DepEdge {
        path,
        depth: u32::try_from(d).unwrap_or(u32::MAX),
    };
    let imports = graph
        .imports_of(&rel, depth)
        .into_iter()
        .filter_map(|(t, d)| match t {
            Target::File(path) => Some(edge(path, d)),
            Target::External(_) => None,
        })
        .collect();
    let importers = graph
        .importers_of(rel.as_str(), depth)
        .into_iter()
        .map(|(path, d)| edge(path, d))
        .collect();
    Ok(Deps {
        imports,
        importers,
        external: external.get(&rel).cloned().unwrap_or_default(),
        repo,
        path: rel,
    })
}

pub(crate) fn cycles(inner: &Inner, repo: &str) -> Result<Vec<Vec<String>>> {
    let searcher = inner.reader.searcher();
    require_repo(&searcher, &inner.fields, repo)?;
    let (graph, _) = load(inner, repo)?;
    Ok(graph.cycles())
}
