//! Symbol documents held back during an indexing run and added just before its commit, after all of the run's files.
//!
//! Why: trigram and code-token postings list `file` and `chunk` documents. When a file's hundred `symbol` documents
//! sat between it and the next file, every gap between listed ids was a hundred ids wide, and postings are packed by
//! the width of their gaps; worse, an occasional wide gap widens the whole block of 128 it falls in. Added after the
//! files, the symbols leave the files' documents side by side (measured on the 5 M-line benchmark corpus: the
//! trigram postings a third smaller than with the symbols added beside their files).
//!
//! A run holds them in memory while they are few (a watch update, most incremental runs), and in a file beside the
//! index once they pass [`MEMORY_BYTES`] (a cold run of millions of lines holds about a million symbols), so memory
//! stays bounded. That file is the writer's own: only the holder of the index's writer lock makes one, so a file found
//! when a writer is created was left by a process that died, and is removed ([`remove_stale`]).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use tantivy::{IndexWriter, TantivyDocument};

use super::schema::{file_key, Fields, KIND_SYMBOL};
use super::tantivy_err;
use super::tokenizer::lowercase;
use super::writer::{file_part, kind_name};
use crate::error::{Error, Result};
use crate::model::Definition;

/// Held records beyond this many bytes move to the file.
const MEMORY_BYTES: usize = if cfg!(test) { 4 << 10 } else { 16 << 20 };

/// The start of the held file's name, in the index directory.
const FILE_PREFIX: &str = ".dreamos-held-symbols-";

/// The symbol documents of a run's files, not yet added to the writer.
pub(crate) struct HeldSymbols {
    /// Where the file goes, if one is needed.
    path: PathBuf,
    /// Records ([`encode`]) held in memory.
    memory: Vec<u8>,
    /// The file records went to once memory was full.
    file: Option<BufWriter<File>>,
}

impl HeldSymbols {
    /// Holds symbols for a run writing the index in `dir`.
    pub(crate) fn new(dir: &Path) -> HeldSymbols {
        HeldSymbols {
            path: dir.join(format!("{FILE_PREFIX}{}", std::process::id())),
            memory: Vec::new(),
            file: None,
        }
    }

    /// Holds the definitions of the file `path` (its language's name `lang`).
    pub(crate) fn hold(&mut self, path: &str, lang: &str, defs: &[Definition]) -> Result<()> {
        if defs.is_empty() {
            return Ok(());
        }
        let start = self.memory.len();
        encode(&mut self.memory, path, lang, defs);
        if let Some(file) = &mut self.file {
            file.write_all(&self.memory[start..])
                .map_err(|cause| write_error(&self.path, cause))?;
            self.memory.truncate(start);
        } else if self.memory.len() > MEMORY_BYTES {
            let mut file = File::create(&self.path)
                .map(BufWriter::new)
                .map_err(|cause| write_error(&self.path, cause))?;
            file.write_all(&self.memory)
                .map_err(|cause| write_error(&self.path, cause))?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        Ok(())
    }

    /// Adds every held symbol document of repository `repo` to `writer`, and holds nothing afterwards.
    ///
    /// They are read back and added one at a time: Tantivy's queue of documents to index is bounded by its number of
    /// batches, so one document per batch keeps what waits in memory to a few thousand documents.
    pub(crate) fn add_to(&mut self, writer: &IndexWriter, f: &Fields, repo: &str) -> Result<()> {
        let add = &mut |doc: TantivyDocument| {
            writer
                .add_document(doc)
                .map(|_| ())
                .map_err(tantivy_err("adding a document"))
        };
        if let Some(file) = self.file.take() {
            let read_error = |path: &Path| {
                let path = path.to_path_buf();
                move |cause| Error::Io { path, cause }
            };
            file.into_inner()
                .map_err(|e| write_error(&self.path, e.into_error()))?;
            let mut reader = File::open(&self.path)
                .map(BufReader::new)
                .map_err(read_error(&self.path))?;
            let decoded = decode(&mut reader, f, repo, add).map_err(|e| match e {
                Held::Io(cause) => read_error(&self.path)(cause),
                Held::Other(e) => e,
            });
            self.remove_file();
            decoded?;
        }
        let memory = std::mem::take(&mut self.memory);
        decode(&mut memory.as_slice(), f, repo, add).map_err(|e| match e {
            // Reading from memory cannot fail but for a record cut short, which is corruption.
            Held::Io(cause) => Error::Corrupt(format!("held symbols: {cause}")),
            Held::Other(e) => e,
        })
    }

    fn remove_file(&self) {
        // A file left behind is removed when the next writer is created.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for HeldSymbols {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            self.remove_file();
        }
    }
}

/// Removes held files left in the index directory `dir` by processes that died during a run. Only the holder of the
/// writer lock calls this, and it is the only process that makes such files.
pub(crate) fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(FILE_PREFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn write_error(path: &Path, cause: std::io::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        cause,
    }
}

/// Appends one file's record: its path, its language, then for each definition its lowercase name, kind and JSON,
/// each string as a little-endian `u32` length and its bytes.
fn encode(out: &mut Vec<u8>, path: &str, lang: &str, defs: &[Definition]) {
    let mut put = |s: &str| {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&s.as_bytes()[..len as usize]);
    };
    put(path);
    put(lang);
    put(&defs.len().to_string());
    for def in defs {
        put(&lowercase(&def.name));
        put(&kind_name(def.kind));
        // Encoding plain structs of strings and numbers cannot fail.
        put(&serde_json::to_string(def).unwrap_or_default());
    }
}

/// Why reading held records failed.
enum Held {
    /// Reading them failed, or they end in the middle of a record.
    Io(std::io::Error),
    /// Making or adding a document failed.
    Other(Error),
}

impl From<Error> for Held {
    fn from(e: Error) -> Held {
        Held::Other(e)
    }
}

/// Reads records written by [`encode`] and makes each definition's `symbol` document.
fn decode(
    reader: &mut dyn Read,
    f: &Fields,
    repo: &str,
    emit: &mut dyn FnMut(TantivyDocument) -> Result<()>,
) -> std::result::Result<(), Held> {
    let mut records = Records {
        reader,
        buf: Vec::new(),
    };
    while let Some(path) = records.next(true)? {
        let lang = records.take()?;
        let count: usize = records.take()?.parse().map_err(|_| {
            Held::Other(Error::Corrupt(
                "a held symbol count is not a number".to_string(),
            ))
        })?;
        let key = file_key(repo, &path);
        for _ in 0..count {
            let mut doc = file_part(f, KIND_SYMBOL, repo, &path, &key, &lang);
            doc.add_text(f.sym_lower, records.take()?);
            doc.add_text(f.sym_kind, records.take()?);
            // Snippets are cut from the file's stored text when a symbol is asked for, rather than stored with each
            // of the many symbols: they would repeat a large share of every file.
            doc.add_text(f.sym_json, records.take()?);
            emit(doc)?;
        }
    }
    Ok(())
}

/// The strings of encoded records, one after another.
struct Records<'r> {
    reader: &'r mut dyn Read,
    buf: Vec<u8>,
}

impl Records<'_> {
    /// The next string; `None` at the end when `may_end` (between records).
    fn next(&mut self, may_end: bool) -> std::result::Result<Option<String>, Held> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < len.len() {
            match self.reader.read(&mut len[got..]) {
                Ok(0) if got == 0 && may_end => return Ok(None),
                Ok(0) => return Err(Held::Io(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Held::Io(e)),
            }
        }
        self.buf.resize(u32::from_le_bytes(len) as usize, 0);
        self.reader.read_exact(&mut self.buf).map_err(Held::Io)?;
        String::from_utf8(std::mem::take(&mut self.buf))
            .map(Some)
            .map_err(|_| Held::Other(Error::Corrupt("a held symbol is not UTF-8".to_string())))
    }

    fn take(&mut self) -> std::result::Result<String, Held> {
        self.next(false)?
            .ok_or_else(|| Held::Io(std::io::ErrorKind::UnexpectedEof.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SymbolKind;

    fn def(name: &str, line: u32) -> Definition {
        Definition {
            name: name.to_string(),
            kind: SymbolKind::Function,
            line,
            end_line: line + 2,
            container: Some("Ünïcode".to_string()),
            signature: format!("fn {name}() {{"),
            doc: None,
            in_macro: false,
        }
    }

    /// What comes back of held symbols, as (path, lowercase name, JSON).
    fn read_back(held: &mut HeldSymbols) -> Vec<(String, String, String)> {
        let (_, f) = Fields::build();
        let mut out = Vec::new();
        let mut docs = Vec::new();
        let mut memory = std::mem::take(&mut held.memory);
        if let Some(file) = held.file.take() {
            file.into_inner().expect("flush");
            let bytes = std::fs::read(&held.path).expect("the held file");
            held.remove_file();
            let mut emit = |doc: TantivyDocument| {
                docs.push(doc);
                Ok(())
            };
            decode(&mut bytes.as_slice(), &f, "r", &mut emit)
                .map_err(|_| "decode")
                .expect("decodes");
        }
        let mut emit = |doc: TantivyDocument| {
            docs.push(doc);
            Ok(())
        };
        decode(&mut memory.as_slice(), &f, "r", &mut emit)
            .map_err(|_| "decode")
            .expect("decodes");
        memory.clear();
        for doc in docs {
            let get = |field| {
                super::super::stored_str(&doc, field)
                    .unwrap_or("")
                    .to_string()
            };
            out.push((get(f.path), get(f.sym_lower), get(f.sym_json)));
        }
        out
    }

    #[test]
    fn few_symbols_stay_in_memory_and_many_go_to_a_file_that_is_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut held = HeldSymbols::new(dir.path());
        held.hold("src/a.rs", "rust", &[def("Alpha", 1), def("beta", 5)])
            .expect("hold");
        held.hold("src/empty.rs", "rust", &[]).expect("hold");
        assert!(held.file.is_none(), "two symbols fit in memory");
        assert_eq!(
            read_back(&mut held),
            vec![
                (
                    "src/a.rs".to_string(),
                    "alpha".to_string(),
                    serde_json::to_string(&def("Alpha", 1)).expect("json")
                ),
                (
                    "src/a.rs".to_string(),
                    "beta".to_string(),
                    serde_json::to_string(&def("beta", 5)).expect("json")
                ),
            ]
        );
        // Past the memory bound, every record (the earlier ones too) goes to the file, in order.
        let many: Vec<Definition> = (0..200).map(|i| def(&format!("name_{i}"), i)).collect();
        for file in 0..5 {
            held.hold(&format!("src/f{file}.rs"), "rust", &many)
                .expect("hold");
        }
        assert!(held.file.is_some(), "1,000 symbols went to a file");
        assert!(held.path.exists());
        let back = read_back(&mut held);
        assert_eq!(back.len(), 1000);
        assert_eq!(back[0].0, "src/f0.rs");
        assert_eq!(
            back[999],
            (
                "src/f4.rs".to_string(),
                "name_199".to_string(),
                serde_json::to_string(&many[199]).expect("json")
            )
        );
        assert!(!held.path.exists(), "the file is removed once read");
        // A run that fails drops what it held, file included.
        for file in 0..5 {
            held.hold(&format!("src/g{file}.rs"), "rust", &many)
                .expect("hold");
        }
        let path = held.path.clone();
        assert!(path.exists());
        drop(held);
        assert!(!path.exists(), "dropped with its run");
    }

    #[test]
    fn records_cut_short_are_an_error_not_a_panic() {
        let mut bytes = Vec::new();
        encode(&mut bytes, "src/a.rs", "rust", &[def("alpha", 1)]);
        let (_, f) = Fields::build();
        for cut in 1..bytes.len() {
            let mut emit = |_doc: TantivyDocument| Ok(());
            let result = decode(&mut &bytes[..cut], &f, "r", &mut emit);
            assert!(result.is_err(), "{cut} of {} bytes decoded", bytes.len());
        }
    }

    #[test]
    fn files_left_by_a_dead_process_are_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let left = dir.path().join(format!("{FILE_PREFIX}12345"));
        let other = dir.path().join("meta.json");
        std::fs::write(&left, b"x").expect("write");
        std::fs::write(&other, b"{}").expect("write");
        remove_stale(dir.path());
        assert!(!left.exists());
        assert!(other.exists(), "only held files are removed");
    }
}
