//! A file's text as the index stores it: cut at line ends into chunks, each a `chunk` document right after the
//! file's `file` document; read back whole, a chunk at a time, or only the chunks around a line.
//!
//! Why chunks: substring and regex search select candidates by trigrams, then verify each against its stored text.
//! A large file holds nearly every common trigram, so a rare string made of common trigrams (`"not_usize: Str"`)
//! used to be a candidate in most large files, and each cost the decompression of the whole file. Per chunk of
//! [`CHUNK_BYTES`], the trigrams must all occur within a few hundred lines, which few chunks satisfy, and a candidate
//! costs one chunk.
//!
//! Where a chunk is: a file's documents are added in one batch, the `file` document first and its chunks right after
//! it, so they land in one segment in that order; merges keep the order of the documents they keep, and a file's
//! documents are deleted together (by its key). So chunk `k` of the file document `d` is document `d + 1 + k`, and
//! the `chunk_no` column says which chunk a document is (none for other kinds): this is how a chunk finds its file,
//! and a file its chunks, without a lookup. Readers check what they read.

use tantivy::columnar::Column;
use tantivy::{DocAddress, DocId, Searcher, TantivyDocument};

use super::schema::Fields;
use super::{stored_str, tantivy_err};
use crate::error::{Error, Result};

/// The size a chunk grows to before it is cut at the next line end. Small enough that a chunk holds only a share of
/// a large file's trigrams, large enough that the trigrams' postings grow by about half, not more (measured on the
/// 5 M-line benchmark corpus: 8 KiB chunks select 30 to 500 times fewer bytes of text for rare strings).
pub(crate) const CHUNK_BYTES: usize = 8 * 1024;

/// A text up to this long stays one chunk: cutting a small tail off would add a document for little gain.
const ONE_CHUNK_MAX: usize = CHUNK_BYTES * 3 / 2;

/// Cuts `text` at line ends into chunks of at least [`CHUNK_BYTES`] (the last may be shorter), each with the 0-based
/// line it starts at. A line break belongs to the chunk it ends. Every text is at least one chunk, even an empty one.
pub(crate) fn cut(text: &str) -> Vec<(u32, &str)> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(text.len() / CHUNK_BYTES + 1);
    let (mut start, mut line) = (0usize, 0u32);
    loop {
        let rest = &text[start..];
        if rest.len() <= ONE_CHUNK_MAX {
            out.push((line, rest));
            return out;
        }
        let end = match memchr::memchr(b'\n', &bytes[start + CHUNK_BYTES..]) {
            Some(i) => start + CHUNK_BYTES + i + 1,
            None => text.len(),
        };
        // `end` follows a line break (or is the end), so it is a character boundary.
        let piece = &text[start..end];
        out.push((line, piece));
        if end == text.len() {
            return out;
        }
        let breaks = memchr::memchr_iter(b'\n', piece.as_bytes()).count();
        line = line.saturating_add(u32::try_from(breaks).unwrap_or(u32::MAX));
        start = end;
    }
}

/// The chunk columns of a searcher's segments, opened once per question.
pub(crate) struct ChunkColumns {
    /// Per segment: `chunk_no` and `chunk_line`, or `None` for a segment without chunks.
    segments: Vec<Option<(Column<u64>, Column<u64>)>>,
}

impl ChunkColumns {
    pub(crate) fn open(searcher: &Searcher) -> Result<ChunkColumns> {
        let mut segments = Vec::with_capacity(searcher.segment_readers().len());
        for segment in searcher.segment_readers() {
            let fast = segment.fast_fields();
            let no = fast
                .column_opt::<u64>("chunk_no")
                .map_err(tantivy_err("reading the chunk numbers"))?;
            let line = fast
                .column_opt::<u64>("chunk_line")
                .map_err(tantivy_err("reading the chunk lines"))?;
            segments.push(no.zip(line));
        }
        Ok(ChunkColumns { segments })
    }

    fn columns(&self, addr: DocAddress) -> Option<&(Column<u64>, Column<u64>)> {
        self.segments
            .get(addr.segment_ord as usize)
            .and_then(Option::as_ref)
    }

    /// Which chunk of its file the document at `addr` is; `None` when it is not a chunk.
    pub(crate) fn chunk_no(&self, addr: DocAddress) -> Option<u64> {
        let (no, _) = self.columns(addr)?;
        (addr.doc_id < no.num_docs())
            .then(|| no.first(addr.doc_id))
            .flatten()
    }

    /// The 0-based line of its file that the chunk at `addr` starts at; `None` when it is not a chunk.
    pub(crate) fn first_line(&self, addr: DocAddress) -> Option<usize> {
        let (_, line) = self.columns(addr)?;
        (addr.doc_id < line.num_docs())
            .then(|| line.first(addr.doc_id))
            .flatten()
            .map(|l| usize::try_from(l).unwrap_or(usize::MAX))
    }

    /// The file document the chunk at `addr` belongs to.
    pub(crate) fn file_of(&self, addr: DocAddress) -> Option<DocAddress> {
        let no = DocId::try_from(self.chunk_no(addr)?).ok()?;
        let doc = addr.doc_id.checked_sub(no)?.checked_sub(1)?;
        let file = DocAddress::new(addr.segment_ord, doc);
        // The document before chunk 0 is the file's, which is no chunk.
        self.chunk_no(file).is_none().then_some(file)
    }

    /// The chunks of the file document at `file`, in order, each with the line it starts at.
    pub(crate) fn of_file(&self, file: DocAddress) -> Vec<(DocAddress, usize)> {
        let mut out = Vec::new();
        let mut doc = file.doc_id;
        loop {
            let Some(next) = doc.checked_add(1) else {
                return out;
            };
            doc = next;
            let addr = DocAddress::new(file.segment_ord, doc);
            match (self.chunk_no(addr), self.first_line(addr)) {
                (Some(no), Some(line)) if no == out.len() as u64 => out.push((addr, line)),
                _ => return out,
            }
        }
    }

    /// True when the chunks at `a` and then `b` belong to the same file: `b` is as many chunks after `a` in its file
    /// as it is documents after `a` in the segment (chunks of different files are never so, since a file document
    /// lies between them).
    pub(crate) fn same_file(&self, a: DocAddress, b: DocAddress) -> bool {
        if a.segment_ord != b.segment_ord || b.doc_id <= a.doc_id {
            return false;
        }
        match (self.chunk_no(a), self.chunk_no(b)) {
            (Some(x), Some(y)) => y > x && y - x == u64::from(b.doc_id - a.doc_id),
            _ => false,
        }
    }
}

/// One chunk as stored: where its file is (repository, path, language name) and its text.
pub(crate) struct StoredChunk {
    pub(crate) repo: String,
    pub(crate) path: String,
    pub(crate) lang: String,
    pub(crate) text: String,
}

/// Reads the chunk at `addr`.
pub(crate) fn read_chunk(searcher: &Searcher, f: &Fields, addr: DocAddress) -> Result<StoredChunk> {
    let doc: TantivyDocument = searcher
        .doc(addr)
        .map_err(tantivy_err("reading a stored file"))?;
    let field = |field| stored_str(&doc, field).unwrap_or("").to_string();
    Ok(StoredChunk {
        repo: field(f.repo),
        path: field(f.path),
        lang: field(f.lang),
        text: field(f.text),
    })
}

/// The whole text of the file document at `file` (`repo`, `path`), from its chunks.
pub(crate) fn whole_text(
    searcher: &Searcher,
    f: &Fields,
    cols: &ChunkColumns,
    file: DocAddress,
    repo: &str,
    path: &str,
) -> Result<String> {
    let chunks = cols.of_file(file);
    let mut text = String::new();
    for (addr, _) in chunks {
        let chunk = read_chunk(searcher, f, addr)?;
        check_owner(&chunk, repo, path)?;
        if text.is_empty() {
            text = chunk.text;
        } else {
            text.push_str(&chunk.text);
        }
    }
    Ok(text)
}

/// Fails when a chunk read for `repo`/`path` belongs to another file: the order the writer guarantees was broken.
fn check_owner(chunk: &StoredChunk, repo: &str, path: &str) -> Result<()> {
    if chunk.repo == repo && chunk.path == path {
        Ok(())
    } else {
        Err(Error::Corrupt(format!(
            "a chunk of {repo}/{path} belongs to {}/{}; index the repository again",
            chunk.repo, chunk.path
        )))
    }
}

/// One chunk of [`FileLines`]: its address and first line, and its text with its line index once read.
struct LazyChunk {
    addr: DocAddress,
    first_line: usize,
    text: Option<(String, LineIndex)>,
}

/// Lines of one file, read a chunk at a time as they are asked for: a snippet of a large file costs one chunk.
pub(crate) struct FileLines<'s> {
    searcher: &'s Searcher,
    fields: &'s Fields,
    repo: String,
    path: String,
    chunks: Vec<LazyChunk>,
}

impl<'s> FileLines<'s> {
    /// The lines of the file document at `file`, which is `repo`/`path`.
    pub(crate) fn new(
        searcher: &'s Searcher,
        fields: &'s Fields,
        cols: &ChunkColumns,
        file: DocAddress,
        repo: &str,
        path: &str,
    ) -> FileLines<'s> {
        FileLines {
            searcher,
            fields,
            repo: repo.to_string(),
            path: path.to_string(),
            chunks: cols
                .of_file(file)
                .into_iter()
                .map(|(addr, first_line)| LazyChunk {
                    addr,
                    first_line,
                    text: None,
                })
                .collect(),
        }
    }

    /// Hands over the chunk at `addr`, already read, so that its lines are not read again.
    pub(crate) fn preload(&mut self, addr: DocAddress, text: String, index: LineIndex) {
        if let Some(chunk) = self.chunks.iter_mut().find(|c| c.addr == addr) {
            chunk.text = Some((text, index));
        }
    }

    /// Line `i` (0-based) without its line break, `None` past the end.
    pub(crate) fn line(&mut self, i: usize) -> Result<Option<&str>> {
        let k = self.chunks.partition_point(|c| c.first_line <= i);
        let Some(k) = k.checked_sub(1) else {
            return Ok(None);
        };
        let chunk = &mut self.chunks[k];
        if chunk.text.is_none() {
            let read = read_chunk(self.searcher, self.fields, chunk.addr)?;
            check_owner(&read, &self.repo, &self.path)?;
            let index = LineIndex::new(&read.text);
            chunk.text = Some((read.text, index));
        }
        let Some((text, index)) = chunk.text.as_ref() else {
            return Ok(None);
        };
        let local = i - chunk.first_line;
        Ok((local < index.count(text)).then(|| index.line(text, local)))
    }

    /// Line `line` (1-based) with one line of context on each side, as [`LineIndex::snippet`] cuts it; empty when
    /// the file has no such line.
    pub(crate) fn snippet(&mut self, line: u32) -> Result<String> {
        let i = (line as usize).saturating_sub(1);
        if self.line(i)?.is_none() {
            return Ok(String::new());
        }
        let mut out = Vec::with_capacity(3);
        for k in i.saturating_sub(1)..=i.saturating_add(1) {
            if let Some(text) = self.line(k)? {
                out.push(clip_line(text).into_owned());
            }
        }
        Ok(out.join("\n"))
    }
}

/// The most characters of one line a snippet shows.
pub(crate) const SNIPPET_LINE_MAX: usize = 400;

/// A line cut to [`SNIPPET_LINE_MAX`] characters, with an ellipsis where it was cut.
pub(crate) fn clip_line(line: &str) -> std::borrow::Cow<'_, str> {
    match line.char_indices().nth(SNIPPET_LINE_MAX) {
        None => std::borrow::Cow::Borrowed(line),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &line[..end])),
    }
}

/// Start offsets of the lines of a text.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex { starts }
    }

    /// The 0-based line holding byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1)
    }

    /// Number of lines as `str::lines` counts them (a final newline does not start another line).
    pub(crate) fn count(&self, text: &str) -> usize {
        if text.is_empty() {
            0
        } else if text.ends_with('\n') {
            self.starts.len() - 1
        } else {
            self.starts.len()
        }
    }

    /// Line `i` without its line break.
    pub(crate) fn line<'t>(&self, text: &'t str, i: usize) -> &'t str {
        let start = self.starts[i];
        let end = self.starts.get(i + 1).map_or(text.len(), |&s| s - 1);
        let line = &text[start..end];
        line.strip_suffix('\r').unwrap_or(line)
    }

    /// Line `i` with one line of context on each side, each at most [`SNIPPET_LINE_MAX`] characters (a hit on a
    /// line of a megabyte must not make an answer of a megabyte).
    pub(crate) fn snippet(&self, text: &str, i: usize) -> String {
        let last = self.count(text).saturating_sub(1);
        let from = i.saturating_sub(1);
        let to = (i + 1).min(last);
        (from..=to.max(from))
            .filter(|&k| k <= last)
            .map(|k| clip_line(self.line(text, k)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts `text` and checks the invariants every cut must hold.
    fn check_cut(text: &str) -> Vec<(u32, &str)> {
        let chunks = cut(text);
        assert!(!chunks.is_empty());
        assert_eq!(chunks.concat_text(), text, "the chunks put back together");
        let mut line = 0u32;
        for (i, (first, piece)) in chunks.iter().enumerate() {
            assert_eq!(*first, line, "chunk {i} starts at the line after the last");
            if i + 1 < chunks.len() {
                assert!(piece.ends_with('\n'), "chunk {i} ends at a line break");
                assert!(
                    piece.len() >= CHUNK_BYTES,
                    "chunk {i} is {} bytes",
                    piece.len()
                );
            }
            line += piece.matches('\n').count() as u32;
        }
        chunks
    }

    trait Concat {
        fn concat_text(&self) -> String;
    }
    impl Concat for Vec<(u32, &str)> {
        fn concat_text(&self) -> String {
            self.iter().map(|(_, p)| *p).collect()
        }
    }

    #[test]
    fn small_texts_are_one_chunk() {
        assert_eq!(check_cut(""), vec![(0, "")]);
        assert_eq!(check_cut("a\nb"), vec![(0, "a\nb")]);
        let exactly = "x".repeat(ONE_CHUNK_MAX);
        assert_eq!(check_cut(&exactly).len(), 1);
    }

    #[test]
    fn large_texts_are_cut_at_line_ends_with_their_first_lines() {
        let line = "let value = compute(input, 42); // ünïcödé\n";
        let text = line.repeat(2_000);
        let chunks = check_cut(&text);
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        let lines_per_chunk = chunks[1].0;
        assert_eq!(
            lines_per_chunk as usize,
            (CHUNK_BYTES + 1).div_ceil(line.len())
        );
        // CRLF line ends stay whole inside their chunk.
        let crlf = "fn a() {}\r\n".repeat(3_000);
        for (_, piece) in check_cut(&crlf) {
            assert!(!piece.starts_with('\n'));
        }
    }

    #[test]
    fn a_line_longer_than_a_chunk_is_not_split() {
        let long_line = "y".repeat(3 * CHUNK_BYTES);
        let alone = format!("{long_line}\nshort\n");
        let chunks = check_cut(&alone);
        assert_eq!(chunks[0].1, format!("{long_line}\n"));
        let text = format!("{}{long_line}\nshort\n", "z\n".repeat(CHUNK_BYTES));
        let chunks = check_cut(&text);
        assert!(
            chunks.iter().any(|(_, p)| p.contains(&long_line)),
            "the long line is whole in one chunk"
        );
        // No line break at all past the cut: the rest is one chunk.
        let text = format!("{}{}", "z\n".repeat(CHUNK_BYTES), "w".repeat(CHUNK_BYTES));
        assert_eq!(check_cut(&text).len(), 2);
    }

    fn snippet_at(text: &str, line: u32) -> String {
        let index = LineIndex::new(text);
        let i = (line as usize).saturating_sub(1);
        if i >= index.count(text) {
            return String::new();
        }
        index.snippet(text, i)
    }

    #[test]
    fn snippets_clip_long_lines_and_stop_at_the_edges() {
        let text = "one\ntwo\nthree\n";
        assert_eq!(snippet_at(text, 1), "one\ntwo");
        assert_eq!(snippet_at(text, 2), "one\ntwo\nthree");
        assert_eq!(snippet_at(text, 3), "two\nthree");
        assert_eq!(snippet_at(text, 4), "");
        let long = "é".repeat(SNIPPET_LINE_MAX + 5);
        let clipped = snippet_at(&long, 1);
        assert_eq!(clipped.chars().count(), SNIPPET_LINE_MAX + 1);
        assert!(clipped.ends_with('…'));
    }
}
