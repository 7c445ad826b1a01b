//! The index schema: four kinds of documents in one Tantivy index, and the fields each uses.
//!
//! - `file`: one per source file. Its content is indexed as code tokens (for identifier search, ranked by BM25);
//!   definition names and the path are indexed as code tokens too, so they can boost the ranking. The names it uses
//!   (references) are indexed raw, one field per kind of use with a frequency per file, so "who uses X" and "how
//!   often" are answered from postings alone; the uses' lines are stored compactly beside.
//! - `chunk`: the file's text, cut at line ends into pieces of about [`super::text::CHUNK_BYTES`] (one piece for
//!   most files), each stored (zstd doc store) and indexed as distinct lowercase trigrams (candidates for substring
//!   and regex search). A rare string whose trigrams are each common is then a candidate in the few pieces that hold
//!   them all, not in every large file, and a candidate costs the decompression of one piece.
//! - `symbol`: one per definition, for exact / prefix / fuzzy name lookup, outlines and tags listings.
//! - `info`: one per file, small: content hash (the incremental manifest), counts, raw imports and resolved
//!   dependency targets. Kept apart from `file` so reading a repository's manifest never decompresses file contents,
//!   and so dependency targets can be rewritten without re-indexing content.
//! - `repo`: one per repository: its root, totals and when it was last indexed.
//!
//! Every fact of a run lives in the index itself, so one Tantivy commit makes the whole run visible at once.
//!
//! A file's documents are added in one batch, the `file` document first, then its chunks in order, then its
//! symbols: a batch lands in one segment in that order, and merges keep the order of what they keep. So chunk `k` of
//! the file document `d` is document `d + 1 + k`, which is how a chunk finds its file and a file its chunks (see
//! [`super::text`]). The `symbol` documents of many files are held back and added together (see `writer`), so that
//! they do not sit between one file's chunks and the next file's: the gaps between the document ids that trigram and
//! code-token postings list stay small, and so do the postings.

use serde::{Deserialize, Serialize};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, STORED,
};

use super::tokenizer::{CODE_TOKENIZER, TRIGRAM_TOKENIZER};

/// Values of the `kind` field.
pub const KIND_FILE: &str = "file";
pub const KIND_CHUNK: &str = "chunk";
pub const KIND_SYMBOL: &str = "symbol";
pub const KIND_INFO: &str = "info";
pub const KIND_REPO: &str = "repo";

/// Handles to every field of the schema.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// Which kind of document this is (`file`, `chunk`, `symbol`, `info`, `repo`).
    pub kind: Field,
    /// Repository name (all kinds).
    pub repo: Field,
    /// Path relative to the repository root, `/`-separated (file, chunk, symbol, info).
    pub path: Field,
    /// `repo` NUL `path`: deleting this term removes a file's `file`, `chunk` and `symbol` documents together.
    pub key: Field,
    /// `repo` NUL `path` on `info` documents only, so they can be rewritten alone.
    pub info_key: Field,
    /// Language name as serde writes it (`rust`, ...), or empty (file, chunk, symbol, info).
    pub lang: Field,
    /// File text indexed with the code tokenizer (file; not stored: the text is stored in the chunks).
    pub content: Field,
    /// One chunk of the file's text, stored (chunk).
    pub text: Field,
    /// The chunk's text indexed as trigrams (chunk; not stored).
    pub trigrams: Field,
    /// The chunk's number in its file, from 0 (chunk; fast).
    pub chunk_no: Field,
    /// The 0-based line of the file the chunk starts at (chunk; fast).
    pub chunk_line: Field,
    /// The path indexed with the code tokenizer (not stored).
    pub path_tokens: Field,
    /// The file's definition names indexed with the code tokenizer (not stored).
    pub def_tokens: Field,
    /// The file's definitions as compact JSON ([`FileDef`] list, stored), so a search hit on a definition line
    /// can say what it defines without another lookup.
    pub file_defs: Field,
    /// Symbol name lowercased (indexed raw) for case-insensitive exact, prefix and fuzzy matching.
    pub sym_lower: Field,
    /// Symbol kind as serde writes it (stored, indexed raw).
    pub sym_kind: Field,
    /// The definition (JSON of `model::Definition`), stored.
    pub sym_json: Field,
    /// File content hash, hex blake3 (info).
    pub hash: Field,
    /// JSON of the info document's details (counts, imports, external imports).
    pub info_json: Field,
    /// Resolved in-repository dependency targets (relative paths), indexed raw so importers are one lookup (the
    /// stored copy is in `info_json`).
    pub dep_target: Field,
    /// Repository root and totals as JSON (repo).
    pub repo_json: Field,
    /// Names the file calls, one value per call, indexed raw with frequencies (file).
    pub ref_call: Field,
    /// Type names the file uses, one value per use (file).
    pub ref_type: Field,
    /// Names the file imports, one value per import (file).
    pub ref_import: Field,
    /// The file's references with their lines, in the compact text form of `refs::encode` (stored, file).
    pub file_refs: Field,
}

impl Fields {
    /// Builds the schema and returns it with its field handles.
    pub fn build() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let code = || {
            let indexing = TextFieldIndexing::default()
                .set_tokenizer(CODE_TOKENIZER)
                // Frequencies feed BM25; positions are left out because phrases are matched as literal text
                // through trigrams, and positions would roughly double the size of this field.
                .set_index_option(IndexRecordOption::WithFreqs);
            TextOptions::default().set_indexing_options(indexing)
        };
        let trigram = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TRIGRAM_TOKENIZER)
                // Trigrams only select candidate files, so document ids are all they need.
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        );
        // Raw fields are only ever filters or exact lookups, never scored, so they need no field norms (a byte per
        // document per field otherwise).
        let raw = |stored: bool, fast: bool| {
            let mut opts = TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_index_option(IndexRecordOption::Basic)
                    .set_fieldnorms(false),
            );
            if stored {
                opts = opts.set_stored();
            }
            if fast {
                opts = opts.set_fast("raw");
            }
            opts
        };
        // A reference field: each value is one use of a name; the frequency of the name's term is the count.
        let reference = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_index_option(IndexRecordOption::WithFreqs)
                .set_fieldnorms(false),
        );
        let fields = Fields {
            kind: b.add_text_field("kind", raw(false, false)),
            repo: b.add_text_field("repo", raw(true, false)),
            path: b.add_text_field("path", raw(true, true)),
            key: b.add_text_field("key", raw(false, false)),
            info_key: b.add_text_field("info_key", raw(false, false)),
            lang: b.add_text_field("lang", raw(true, false)),
            content: b.add_text_field("content", code()),
            text: b.add_text_field("text", STORED),
            trigrams: b.add_text_field("trigrams", trigram),
            // Read a value at a time by document (which chunk a document is, where its lines are), never searched.
            chunk_no: b.add_u64_field("chunk_no", NumericOptions::default().set_fast()),
            chunk_line: b.add_u64_field("chunk_line", NumericOptions::default().set_fast()),
            path_tokens: b.add_text_field("path_tokens", code()),
            def_tokens: b.add_text_field("def_tokens", code()),
            file_defs: b.add_text_field("file_defs", STORED),
            sym_lower: b.add_text_field("sym_lower", raw(false, false)),
            sym_kind: b.add_text_field("sym_kind", raw(false, false)),
            sym_json: b.add_text_field("sym_json", STORED),
            hash: b.add_text_field("hash", STORED),
            info_json: b.add_text_field("info_json", STORED),
            dep_target: b.add_text_field("dep_target", raw(false, false)),
            repo_json: b.add_text_field("repo_json", STORED),
            ref_call: b.add_text_field("ref_call", reference.clone()),
            ref_type: b.add_text_field("ref_type", reference.clone()),
            ref_import: b.add_text_field("ref_import", reference),
            file_refs: b.add_text_field("file_refs", STORED),
        };
        (b.build(), fields)
    }

    /// Looks the fields up in an existing index's schema, failing clearly when it was built by another version.
    pub fn from_schema(schema: &Schema) -> Result<Fields, String> {
        let (expected, fields) = Fields::build();
        for (field, entry) in expected.fields() {
            let found = schema
                .get_field(entry.name())
                .map_err(|_| format!("field {} is missing", entry.name()))?;
            if found != field || schema.get_field_entry(found) != entry {
                return Err(format!("field {} has another definition", entry.name()));
            }
        }
        if schema.num_fields() != expected.num_fields() {
            return Err("the schema has extra fields".to_string());
        }
        Ok(fields)
    }
}

/// The value of the `key` and `info_key` fields for a file.
pub fn file_key(repo: &str, path: &str) -> String {
    format!("{repo}\u{0}{path}")
}

/// One definition as a file document remembers it: enough to label a search hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDef {
    #[serde(rename = "n")]
    pub name: String,
    #[serde(rename = "k")]
    pub kind: crate::model::SymbolKind,
    #[serde(rename = "l")]
    pub line: u32,
    #[serde(rename = "e")]
    pub end_line: u32,
}
