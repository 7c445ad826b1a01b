//! Dependencies: resolving imports to files of the same repository, and the dependency graph.
