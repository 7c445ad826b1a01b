//! The log's segment files: one append-only file per epoch in `<data-dir>/log/`, deleted whole by retention.
//!
//! Groups used to be values in sled trees (one per epoch). sled 0.34 reclaims the space of a dropped tree only
//! when a segment of its own file falls under half live, and shrinks the file only when its tail is free, so the
//! store floated between 2× and 6× the live data under a steady load. A file per epoch gives the space back the
//! moment retention lets the epoch go.
//!
//! # Format
//!
//! A file starts with a 16-byte header (`DREAMLOG`, a little-endian `u32` version, four zero bytes) and holds
//! frames: payload length (`u32`), CRC-32 of key and payload (`u32`), the group's key (`u64`, all little-endian),
//! then the payload (one postcard-encoded group). Each frame is written with one `pwrite` at the file's end.
//!
//! # Durability
//!
//! A frame is in the page cache once written, which survives `kill -9`. [`Segments::sync`] (the log's syncer,
//! before any sender is answered) fdatasyncs every file written since the last sync, and the directory when a
//! file was created, so that with `store.sync = "full"` an answered group survives a power cut too. With `"os"` it
//! does nothing.
//!
//! # Recovery
//!
//! Opening reads every frame in epoch and key order. Acknowledged groups always form a prefix of the log (each
//! answer waits for a sync that covers everything written before it), so the first frame that is short, fails
//! its checksum or breaks the key order is where an interrupted write ended: the file is truncated there, later
//! files are deleted, and a warning says how much went. What went was never acknowledged.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufReader, Read},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
};

use parking_lot::Mutex;

use crate::{
    config::SyncMode,
    error::{Error, Result},
};

/// The directory of the segment files, under the data directory.
pub(super) const LOG_DIR: &str = "log";

const MAGIC: &[u8; 8] = b"DREAMLOG";
const VERSION: u32 = 1;
const FILE_HEADER: usize = 16;
/// Bytes before a frame's payload: length, checksum, key.
pub(super) const FRAME_HEADER: usize = 16;
/// No group is larger (`store.max_group_bytes` is far below): a longer length is a torn or corrupt frame.
const MAX_PAYLOAD: u32 = 1 << 30;

/// Where a group's payload is in its epoch's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Location {
    pub offset: u64,
    pub len: u32,
}

/// One epoch's file.
struct Segment {
    path: PathBuf,
    file: File,
    /// Where the next frame goes. Only the writer thread appends.
    end: AtomicU64,
}

/// The segment files of one log.
pub(super) struct Segments {
    dir: PathBuf,
    mode: SyncMode,
    files: Mutex<BTreeMap<u64, Arc<Segment>>>,
    /// Files written since the last [`Segments::sync`].
    dirty: Mutex<BTreeMap<u64, Arc<Segment>>>,
    /// A file was created since the last sync: the directory must be synced too.
    dir_dirty: AtomicBool,
}

fn file_name(epoch: u64) -> String {
    format!("{epoch:016}.seg")
}

fn epoch_of(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::DataDir {
        dir: path.to_path_buf(),
        cause,
    }
}

fn checksum(key: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&key.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// A frame's payload as read back by [`Segments::open`].
pub(super) struct Frame<'a> {
    pub epoch: u64,
    pub key: u64,
    pub location: Location,
    pub payload: &'a [u8],
}

impl Segments {
    /// Opens (creating if needed) the segment directory `dir` and hands every intact frame, in order, to
    /// `replay`. Repairs an interrupted write as the module's doc says.
    pub fn open(
        dir: &Path,
        mode: SyncMode,
        mut replay: impl FnMut(Frame<'_>) -> Result<()>,
    ) -> Result<Segments> {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(io_error(dir))?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let mut epochs: Vec<u64> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
            let entry = entry.map_err(io_error(dir))?;
            if let Some(epoch) = entry.file_name().to_str().and_then(epoch_of) {
                epochs.push(epoch);
            }
        }
        epochs.sort_unstable();
        let mut files = BTreeMap::new();
        let mut last_key: Option<u64> = None;
        let mut torn: Option<(u64, u64)> = None;
        for &epoch in &epochs {
            let path = dir.join(file_name(epoch));
            if torn.is_some() {
                // After the end of the log: never acknowledged.
                let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                tracing::warn!(path = %path.display(), bytes = len, "removing a log segment written after an interrupted write");
                std::fs::remove_file(&path).map_err(io_error(&path))?;
                continue;
            }
            let file = File::options()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_error(&path))?;
            let (end, intact) = scan(&file, &path, epoch, &mut last_key, &mut replay)?;
            if !intact {
                let len = file.metadata().map_err(io_error(&path))?.len();
                tracing::warn!(
                    path = %path.display(),
                    offset = end,
                    bytes = len.saturating_sub(end),
                    "the message log ends in an interrupted write; truncating it there (nothing there was acknowledged)"
                );
                torn = Some((epoch, end));
            }
            if end < FILE_HEADER as u64 || !intact {
                repair(&file, &path, end)?;
            }
            files.insert(
                epoch,
                Arc::new(Segment {
                    path,
                    file,
                    end: AtomicU64::new(end.max(FILE_HEADER as u64)),
                }),
            );
        }
        if torn.is_some() {
            sync_dir(dir)?;
        }
        Ok(Segments {
            dir: dir.to_path_buf(),
            mode,
            files: Mutex::new(files),
            dirty: Mutex::new(BTreeMap::new()),
            dir_dirty: AtomicBool::new(false),
        })
    }

    /// A buffer for one frame: [`FRAME_HEADER`] bytes reserved, then the payload is appended to it.
    pub fn frame_buffer(capacity: usize) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(FRAME_HEADER + capacity);
        buffer.resize(FRAME_HEADER, 0);
        buffer
    }

    /// Appends a frame (from [`Segments::frame_buffer`], payload appended) to `epoch`'s file, creating the file
    /// if needed. Called by the writer thread only. Durable against a crash of the process on return, against a
    /// power cut after the next [`Segments::sync`].
    pub fn append(&self, epoch: u64, key: u64, mut frame: Vec<u8>) -> Result<Location> {
        let payload_len = frame.len() - FRAME_HEADER;
        let len = u32::try_from(payload_len)
            .ok()
            .filter(|len| *len <= MAX_PAYLOAD)
            .ok_or_else(|| {
                Error::LogWrite(format!("a group of {payload_len} bytes is too large"))
            })?;
        let crc = checksum(key, &frame[FRAME_HEADER..]);
        frame[0..4].copy_from_slice(&len.to_le_bytes());
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        frame[8..16].copy_from_slice(&key.to_le_bytes());
        let segment = self.segment_for(epoch)?;
        let offset = segment.end.load(Ordering::Acquire);
        segment
            .file
            .write_all_at(&frame, offset)
            .map_err(|e| Error::LogWrite(format!("{}: {e}", segment.path.display())))?;
        segment
            .end
            .store(offset + frame.len() as u64, Ordering::Release);
        // Marked after the write and before the writer reports it: a sync that follows the report covers it.
        self.dirty.lock().insert(epoch, segment);
        Ok(Location {
            offset: offset + FRAME_HEADER as u64,
            len,
        })
    }

    fn segment_for(&self, epoch: u64) -> Result<Arc<Segment>> {
        if let Some(segment) = self.files.lock().get(&epoch) {
            return Ok(segment.clone());
        }
        let path = self.dir.join(file_name(epoch));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::LogWrite(format!("cannot create {}: {e}", path.display())))?;
        file.write_all_at(&file_header(), 0)
            .map_err(|e| Error::LogWrite(format!("{}: {e}", path.display())))?;
        let segment = Arc::new(Segment {
            path,
            file,
            end: AtomicU64::new(FILE_HEADER as u64),
        });
        self.files.lock().insert(epoch, segment.clone());
        self.dir_dirty.store(true, Ordering::Release);
        Ok(segment)
    }

    /// A group's payload, or `None` when retention removed its epoch.
    pub fn read(&self, epoch: u64, location: Location) -> Result<Option<Vec<u8>>> {
        let Some(segment) = self.files.lock().get(&epoch).cloned() else {
            return Ok(None);
        };
        let mut buffer = vec![0; location.len as usize];
        // A removed file stays readable through the handle held here.
        segment
            .file
            .read_exact_at(&mut buffer, location.offset)
            .map_err(io_error(&segment.path))?;
        Ok(Some(buffer))
    }

    /// Deletes an epoch's file. Not synced: if the removal is lost in a crash, recovery reads the epoch again
    /// (see the compaction's doc for why that is harmless).
    pub fn remove(&self, epoch: u64) -> Result<()> {
        let segment = self.files.lock().remove(&epoch);
        self.dirty.lock().remove(&epoch);
        if let Some(segment) = segment {
            match std::fs::remove_file(&segment.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(cause) => return Err(io_error(&segment.path)(cause)),
            }
        }
        Ok(())
    }

    /// With `sync = "full"`: fdatasync of every file written since the last call, then of the directory if a
    /// file was created. Covers every append that returned before the call.
    pub fn sync(&self) -> Result<()> {
        if self.mode == SyncMode::Os {
            return Ok(());
        }
        self.sync_always()
    }

    /// [`Segments::sync`] whatever the sync mode (a migration makes its files durable before it deletes the
    /// originals).
    pub fn sync_always(&self) -> Result<()> {
        let dirty = std::mem::take(&mut *self.dirty.lock());
        for segment in dirty.values() {
            segment.file.sync_data().map_err(|cause| Error::Sync {
                path: segment.path.clone(),
                cause,
            })?;
        }
        if self.dir_dirty.swap(false, Ordering::AcqRel) {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Bytes the segment files take.
    pub fn size(&self) -> u64 {
        self.files
            .lock()
            .values()
            .map(|s| s.end.load(Ordering::Acquire))
            .sum()
    }
}

fn file_header() -> [u8; FILE_HEADER] {
    let mut header = [0u8; FILE_HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&VERSION.to_le_bytes());
    header
}

/// Reads one file's frames into `replay`. Returns where the intact part ends and whether the whole file was
/// intact (a file shorter than its header counts as intact and empty: it was being created).
fn scan(
    file: &File,
    path: &Path,
    epoch: u64,
    last_key: &mut Option<u64>,
    replay: &mut impl FnMut(Frame<'_>) -> Result<()>,
) -> Result<(u64, bool)> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut header = [0u8; FILE_HEADER];
    if read_full(&mut reader, &mut header).map_err(io_error(path))? < FILE_HEADER {
        return Ok((0, true));
    }
    if &header[..8] != MAGIC {
        return Err(Error::Corrupt {
            tree: LOG_DIR,
            message: format!(
                "{} is not a Dream.OS log segment (it does not start with DREAMLOG); move it out of the data directory",
                path.display()
            ),
        });
    }
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if version != VERSION {
        return Err(Error::Corrupt {
            tree: LOG_DIR,
            message: format!(
                "{} is a log segment of format {version}; this dreamos reads format {VERSION}",
                path.display()
            ),
        });
    }
    let mut offset = FILE_HEADER as u64;
    let mut payload = Vec::new();
    loop {
        let mut frame = [0u8; FRAME_HEADER];
        let n = read_full(&mut reader, &mut frame).map_err(io_error(path))?;
        if n == 0 {
            return Ok((offset, true));
        }
        if n < FRAME_HEADER {
            return Ok((offset, false));
        }
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let mut key_bytes = [0u8; 8];
        key_bytes.copy_from_slice(&frame[8..16]);
        let key = u64::from_le_bytes(key_bytes);
        if len > MAX_PAYLOAD || last_key.is_some_and(|last| key <= last) {
            return Ok((offset, false));
        }
        payload.resize(len as usize, 0);
        if read_full(&mut reader, &mut payload).map_err(io_error(path))? < len as usize
            || checksum(key, &payload) != crc
        {
            return Ok((offset, false));
        }
        replay(Frame {
            epoch,
            key,
            location: Location {
                offset: offset + FRAME_HEADER as u64,
                len,
            },
            payload: &payload,
        })?;
        *last_key = Some(key);
        offset += (FRAME_HEADER + len as usize) as u64;
    }
}

/// Cuts a file back to `end` (rewriting the header of a file cut inside it) and makes that durable.
fn repair(file: &File, path: &Path, end: u64) -> Result<()> {
    if end < FILE_HEADER as u64 {
        file.set_len(0).map_err(io_error(path))?;
        file.write_all_at(&file_header(), 0)
            .map_err(io_error(path))?;
    } else {
        file.set_len(end).map_err(io_error(path))?;
    }
    file.sync_all().map_err(|cause| Error::Sync {
        path: path.to_path_buf(),
        cause,
    })
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|cause| Error::Sync {
            path: dir.to_path_buf(),
            cause,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut buffer = Segments::frame_buffer(payload.len());
        buffer.extend_from_slice(payload);
        buffer
    }

    fn replayed(dir: &Path) -> (Segments, Vec<(u64, u64, Vec<u8>)>) {
        let mut seen = Vec::new();
        let segments = Segments::open(dir, SyncMode::Full, |f| {
            seen.push((f.epoch, f.key, f.payload.to_vec()));
            Ok(())
        })
        .expect("open");
        (segments, seen)
    }

    #[test]
    fn frames_are_read_back_in_order_and_by_location() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(LOG_DIR);
        let (segments, seen) = replayed(&dir);
        assert!(seen.is_empty());
        let a = segments.append(0, 0, frame(b"zero")).expect("append");
        segments.append(0, 1, frame(b"one")).expect("append");
        let c = segments.append(3, 2, frame(b"two")).expect("append");
        segments.sync().expect("sync");
        assert_eq!(segments.read(0, a).expect("read"), Some(b"zero".to_vec()));
        assert_eq!(segments.read(3, c).expect("read"), Some(b"two".to_vec()));
        drop(segments);
        let (segments, seen) = replayed(&dir);
        assert_eq!(
            seen,
            vec![
                (0, 0, b"zero".to_vec()),
                (0, 1, b"one".to_vec()),
                (3, 2, b"two".to_vec())
            ]
        );
        segments.remove(0).expect("remove");
        assert_eq!(segments.read(0, a).expect("read"), None);
        assert!(!dir.join(file_name(0)).exists());
        let next = segments.append(3, 3, frame(b"three")).expect("append");
        assert_eq!(
            segments.read(3, next).expect("read"),
            Some(b"three".to_vec())
        );
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_later_files_are_removed() {
        for cut in [1usize, 8, FRAME_HEADER, FRAME_HEADER + 2] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().join(LOG_DIR);
            let (segments, _) = replayed(&dir);
            segments.append(0, 0, frame(b"kept")).expect("append");
            segments.append(0, 1, frame(b"torn-frame")).expect("append");
            segments.append(1, 2, frame(b"after")).expect("append");
            drop(segments);
            // Cut the second frame of the first file short, as a power cut in its write would.
            let path = dir.join(file_name(0));
            let full = std::fs::metadata(&path).expect("meta").len();
            let second = (FILE_HEADER + FRAME_HEADER + 4) as u64;
            assert_eq!(full, second + (FRAME_HEADER + 10) as u64);
            File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(second + cut as u64))
                .expect("cut");
            let (segments, seen) = replayed(&dir);
            assert_eq!(seen, vec![(0, 0, b"kept".to_vec())], "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).expect("meta").len(), second);
            assert!(!dir.join(file_name(1)).exists());
            // Appends go on where the intact part ends.
            segments.append(0, 1, frame(b"again")).expect("append");
            drop(segments);
            let (_, seen) = replayed(&dir);
            assert_eq!(
                seen,
                vec![(0, 0, b"kept".to_vec()), (0, 1, b"again".to_vec())]
            );
        }
    }

    #[test]
    fn a_flipped_bit_ends_the_log_at_that_frame() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(LOG_DIR);
        let (segments, _) = replayed(&dir);
        segments.append(0, 0, frame(b"kept")).expect("append");
        let bad = segments.append(0, 1, frame(b"flipped")).expect("append");
        segments.append(0, 2, frame(b"after")).expect("append");
        drop(segments);
        let path = dir.join(file_name(0));
        let file = File::options().write(true).open(&path).expect("open");
        file.write_all_at(b"F", bad.offset).expect("flip");
        let (_, seen) = replayed(&dir);
        assert_eq!(seen, vec![(0, 0, b"kept".to_vec())]);
    }

    #[test]
    fn a_file_cut_inside_its_header_is_an_empty_segment() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(LOG_DIR);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(file_name(0)), b"DREAM").expect("write");
        let (segments, seen) = replayed(&dir);
        assert!(seen.is_empty());
        let at = segments.append(0, 0, frame(b"first")).expect("append");
        assert_eq!(at.offset, (FILE_HEADER + FRAME_HEADER) as u64);
        drop(segments);
        let (_, seen) = replayed(&dir);
        assert_eq!(seen, vec![(0, 0, b"first".to_vec())]);
    }

    #[test]
    fn a_foreign_file_is_refused_with_what_to_do() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join(LOG_DIR);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(file_name(0)), b"not a log segment at all").expect("write");
        let err = Segments::open(&dir, SyncMode::Full, |_| Ok(()))
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(text.contains("not a Dream.OS log segment"), "{text}");
        assert!(text.contains("move it out"), "{text}");
    }
}
