//! Watch mode: keep a repository's index fresh as files are saved.
