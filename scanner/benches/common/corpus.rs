//! The benchmarks' corpus: a fixed, deterministic copy of real code from this machine, shared by the scanner's
//! search bench and the `dreamos` process bench (`tests/benches/cli.rs`, which includes this file by path).
//!
//! Crates from the cargo registry's sources (Rust plus the C they vendor) in sorted order up to 70% of the lines,
//! then Python's standard library, then more crates when that is not enough, until at least the lines asked for
//! are copied. It lives in a directory of its own
//! (not `benches/*.rs`) so that cargo does not take it for a bench target.

use std::path::{Path, PathBuf};

/// Extensions copied into the corpus: languages the scanner parses.
pub const EXTENSIONS: &[&str] = &["rs", "c", "h", "cc", "cpp", "hpp", "go", "java", "py", "ts"];
/// Files above this size are left out of the corpus (the walker skips files over 1 MiB anyway; leaving them out
/// here keeps ripgrep and the index on exactly the same files).
const MAX_FILE: u64 = 512 * 1024;

/// What was copied.
#[derive(Debug, Clone, Copy)]
pub struct Copied {
    pub files: u64,
    pub lines: u64,
    pub bytes: u64,
}

/// Every source file under `dir`, sorted, skipping hidden entries.
pub fn sorted_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            sorted_files(&path, out);
        } else if kind.is_file()
            && path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| EXTENSIONS.contains(&x))
        {
            out.push(path);
        }
    }
}

/// What a corpus made earlier holds (every source file under `dir`), so that a run can index it again.
#[allow(dead_code)] // The search bench uses it; the cli bench, which includes this file too, does not.
pub fn measure(dir: &Path) -> Copied {
    let mut list = Vec::new();
    sorted_files(dir, &mut list);
    let mut copied = Copied {
        files: 0,
        lines: 0,
        bytes: 0,
    };
    for f in list {
        if let Ok(text) = std::fs::read_to_string(&f) {
            copied.files += 1;
            copied.lines += text.lines().count() as u64;
            copied.bytes += text.len() as u64;
        }
    }
    copied
}

/// Copies at least `want_lines` lines of code into `dest`. With `parts` above 1 the files are spread, in order,
/// over `dest/part1` … `dest/partN` of about equal line counts (one repository each); with 1 they go to `dest`.
pub fn build_corpus(dest: &Path, want_lines: u64, parts: u64) -> Result<Copied, String> {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map_err(|_| "neither CARGO_HOME nor HOME is set".to_string())?;
    let mut sources: Vec<(String, PathBuf)> = Vec::new();
    let registry = home.join("registry").join("src");
    if let Ok(entries) = std::fs::read_dir(&registry) {
        let mut mirrors: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        mirrors.sort();
        for mirror in mirrors {
            let mut crates: Vec<_> = std::fs::read_dir(&mirror)
                .map_err(|e| e.to_string())?
                .flatten()
                .map(|e| e.path())
                .collect();
            crates.sort();
            for c in crates {
                let name = c
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                sources.push((format!("crates/{name}"), c));
            }
        }
    }
    let mut pythons: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("python3.") && p.join("os.py").exists())
                })
                .collect()
        })
        .unwrap_or_default();
    pythons.sort();
    // Rust and C first (up to 70% of the target), then Python for a mixed corpus.
    let rust_budget = want_lines * 7 / 10;
    let parts = parts.max(1);
    let mut copied = Copied {
        files: 0,
        lines: 0,
        bytes: 0,
    };
    let copy = |src: &Path, rel: &Path, copied: &mut Copied| -> Result<(), String> {
        let Ok(meta) = std::fs::metadata(src) else {
            return Ok(());
        };
        if meta.len() > MAX_FILE || meta.len() == 0 {
            return Ok(());
        }
        let Ok(text) = std::fs::read_to_string(src) else {
            return Ok(());
        };
        if text.as_bytes().contains(&0) {
            return Ok(());
        }
        let to = if parts > 1 {
            let part = (copied.lines * parts / want_lines.max(1)).min(parts - 1) + 1;
            dest.join(format!("part{part}")).join(rel)
        } else {
            dest.join(rel)
        };
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&to, &text).map_err(|e| e.to_string())?;
        copied.files += 1;
        copied.lines += text.lines().count() as u64;
        copied.bytes += text.len() as u64;
        Ok(())
    };
    let copy_crate = |(name, dir): &(String, PathBuf), copied: &mut Copied| -> Result<(), String> {
        let mut list = Vec::new();
        sorted_files(dir, &mut list);
        for f in list {
            let rel = Path::new(name).join(f.strip_prefix(dir).map_err(|e| e.to_string())?);
            copy(&f, &rel, copied)?;
        }
        Ok(())
    };
    let mut crates = sources.iter();
    for source in crates.by_ref() {
        copy_crate(source, &mut copied)?;
        if copied.lines >= rust_budget {
            break;
        }
    }
    for py in &pythons {
        let mut list = Vec::new();
        sorted_files(py, &mut list);
        for f in list {
            if copied.lines >= want_lines {
                break;
            }
            let rel = Path::new("python").join(f.strip_prefix(py).map_err(|e| e.to_string())?);
            copy(&f, &rel, &mut copied)?;
        }
    }
    // When Python's library is too small for the size asked, more crates make up the rest.
    for source in crates {
        if copied.lines >= want_lines {
            break;
        }
        copy_crate(source, &mut copied)?;
    }
    // Beyond what the registry and Python hold (the scale run asks for millions of lines): Go's standard library
    // (Debian's golang-*-src) and the system's C and C++ headers, in that order.
    let mut more: Vec<(String, PathBuf)> = std::fs::read_dir("/usr/share")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("go-"))
                        && p.join("src").is_dir()
                })
                .map(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    (name, p.join("src"))
                })
                .collect()
        })
        .unwrap_or_default();
    more.sort();
    more.push(("include".to_string(), PathBuf::from("/usr/include")));
    for (name, dir) in &more {
        if copied.lines >= want_lines {
            break;
        }
        let mut list = Vec::new();
        sorted_files(dir, &mut list);
        for f in list {
            if copied.lines >= want_lines {
                break;
            }
            let rel = Path::new(name).join(f.strip_prefix(dir).map_err(|e| e.to_string())?);
            copy(&f, &rel, &mut copied)?;
        }
    }
    if copied.lines < want_lines {
        return Err(format!(
            "only {} lines of source found (cargo registry sources under {}, /usr/lib/python3.*, /usr/share/go-*/src, /usr/include); build the workspace once so the registry is populated, or install golang-1.19-src",
            copied.lines,
            registry.display()
        ));
    }
    Ok(copied)
}
