//! House rules checked on the source tree (as rust-analyzer's tidy test does): every `.rs` file opens with a
//! `//!` line saying what it owns, and no file leaves a todo, unimplemented or dbg macro behind.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            // Build output and fixtures are not ours to style.
            if name.starts_with("target") || name.starts_with('.') || name == "fixtures" {
                continue;
            }
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_says_what_it_owns_and_has_no_leftovers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let mut files = Vec::new();
    for krate in ["runtime", "agents", "scanner", "bot", "tests"] {
        rust_files(&root.join(krate), &mut files);
    }
    assert!(files.len() > 30, "found only {} files", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        let rel = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        if !text.starts_with("//!") {
            problems.push(format!(
                "{rel}: does not start with a `//!` line saying what it owns"
            ));
        }
        // Spelled in pieces so that this file does not trip its own check.
        for leftover in [
            concat!("todo", "!("),
            concat!("unimplemented", "!("),
            concat!("dbg", "!("),
        ] {
            if text.contains(leftover) {
                problems.push(format!("{rel}: contains {leftover}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
