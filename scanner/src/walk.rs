//! The walker: which files of a repository get scanned, and why the others are skipped.
