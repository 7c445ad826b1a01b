//! The sled store: opened once per data directory, locked against a second process, versioned, with typed trees.
//!
//! Every persisted thing of Dream.OS lives in one sled database under `<data-dir>/db`, one tree per kind of
//! record. Values are encoded with postcard (compact, fast, serde-driven); keys are big-endian so that sled's byte
//! order is the logical order.
//!
//! # Durability
//!
//! [`Store::flush`] is the one way anything becomes durable, and it is what "accepted" rests on. sled 0.34's
//! `flush()` alone ends in `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)` on Linux: the pages go to the device,
//! but neither the file's size and extents nor the device's write cache are made durable, so it survives a
//! `kill -9` and not a power cut (measured with LazyFS: every message acknowledged since the store opened was lost).
//! With `store.sync = "full"` (the default) each flush is followed by an `fdatasync` of sled's data file (a second
//! handle works: fsync acts on the inode), of any new file sled created (blobs, snapshots) and of the directories
//! that name them. With `"os"` only sled's flush runs.

use std::{
    collections::BTreeSet,
    ffi::OsString,
    fs::File,
    marker::PhantomData,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use parking_lot::Mutex;
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    config::SyncMode,
    error::{Error, Result},
};

/// Version of the on-disk layout. Bump it when a tree's encoding changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

const META_TREE: &str = "meta";

/// sled's segment size; see [`Store::open`]. Fixed at creation: sled refuses to open a database with another.
pub const SEGMENT_SIZE: usize = 8 * 1024 * 1024;
const SCHEMA_KEY: &[u8] = b"schema_version";

/// The open store. Cheap to clone; the database closes when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    db: sled::Db,
    dir: PathBuf,
    syncer: Syncer,
    /// Set by tests to make every flush fail, as a dying disk would.
    fail_flushes: AtomicBool,
    // Held for the life of the store: the OS releases the lock when the process exits, even on `kill -9`.
    _lock: File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, with `sync = "full"`. A second process on the same
    /// directory gets [`Error::DataDirInUse`].
    pub fn open(data_dir: &Path) -> Result<Store> {
        Store::open_with(data_dir, SyncMode::Full)
    }

    /// Opens the store with the given meaning of "durable" (see the module's doc).
    pub fn open_with(data_dir: &Path, sync: SyncMode) -> Result<Store> {
        let io_err = |cause| Error::DataDir {
            dir: data_dir.to_path_buf(),
            cause,
        };
        std::fs::create_dir_all(data_dir).map_err(io_err)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join("LOCK"))
            .map_err(io_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::DataDirInUse {
                    dir: data_dir.to_path_buf(),
                })
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io_err(source)),
        }
        let config = sled::Config::new()
            .path(data_dir.join("db"))
            .cache_capacity(256 * 1024 * 1024)
            // sled writes any value over a quarter of a segment to a file of its own (one file created per
            // write). A log group is one value of up to `store.max_batch` records, so segments are sized to
            // keep groups inline in the log: 8 MiB segments put the limit near 2 MiB.
            .segment_size(SEGMENT_SIZE)
            // No background flusher: the message log's writer flushes after every group, and everything else
            // asks it to (see `MessageLog::request_flush`). A second flusher only competed with it for the disk
            // and lengthened the tail of acceptance latency.
            .flush_every_ms(None);
        let db = open_sled(&config)?;
        let syncer = Syncer::new(sync, data_dir)?;
        let store = Store {
            inner: Arc::new(StoreInner {
                db,
                dir: data_dir.to_path_buf(),
                syncer,
                fail_flushes: AtomicBool::new(false),
                _lock: lock,
            }),
        };
        store.check_schema()?;
        Ok(store)
    }

    /// What a flush makes durable.
    pub fn sync_mode(&self) -> SyncMode {
        self.inner.syncer.mode
    }

    /// The data directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Makes every write so far durable: sled's flush, then (with `sync = "full"`) an fdatasync of its files.
    pub fn flush(&self) -> Result<()> {
        self.flush_buffers()?;
        self.sync_files()
    }

    /// The first half of [`Store::flush`]: sled writes its buffers to the file (`sync_file_range` on Linux).
    /// Durable against `kill -9`, not against a power cut, until [`Store::sync_files`] follows.
    /// Returns whether it wrote anything (sled's flush returns 0 bytes when everything was already written).
    pub(crate) fn flush_buffers(&self) -> Result<bool> {
        self.injected_failure()?;
        Ok(self.inner.db.flush()? > 0)
    }

    /// The second half of [`Store::flush`]: with `sync = "full"`, fdatasync of everything flushed before the call
    /// (of sled's data file, new blobs and snapshots, and their directories). Nothing with `"os"`.
    pub(crate) fn sync_files(&self) -> Result<()> {
        self.injected_failure()?;
        self.inner.syncer.sync()
    }

    fn injected_failure(&self) -> Result<()> {
        if self.inner.fail_flushes.load(Ordering::Acquire) {
            return Err(Error::Sync {
                path: self.inner.syncer.data_path.clone(),
                cause: std::io::Error::other("injected by a test: the disk is failing"),
            });
        }
        Ok(())
    }

    /// Makes every later flush fail (or succeed again), as a failing disk would. For tests of what the swarm does
    /// when the store breaks underneath it.
    #[doc(hidden)]
    pub fn fail_flushes_for_test(&self, fail: bool) {
        self.inner.fail_flushes.store(fail, Ordering::Release);
    }

    /// Bytes the database's files take on disk (the data file, snapshots, blobs), for benchmarks and status.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.inner.db.size_on_disk().map_err(Error::from)
    }

    /// A typed view of a tree.
    pub fn typed<V>(&self, name: &'static str) -> Result<TypedTree<V>> {
        Ok(TypedTree {
            tree: self.inner.db.open_tree(name)?,
            name,
            _value: PhantomData,
        })
    }

    pub(crate) fn raw_tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.inner.db.open_tree(name)?)
    }

    /// The names of every tree in the database.
    pub(crate) fn tree_names(&self) -> Vec<String> {
        self.inner
            .db
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect()
    }

    /// Removes a tree and everything in it at once: sled frees its pages as a whole, which reclaims space far
    /// sooner than removing its keys one by one.
    pub(crate) fn drop_tree(&self, name: &str) -> Result<bool> {
        Ok(self.inner.db.drop_tree(name)?)
    }

    fn check_schema(&self) -> Result<()> {
        let meta = self.raw_tree(META_TREE)?;
        match meta.get(SCHEMA_KEY)? {
            None => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
                self.flush()?;
                Ok(())
            }
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::Corrupt {
                        tree: META_TREE,
                        message: "schema version is not 4 bytes".to_string(),
                    })?;
                if found == SCHEMA_VERSION {
                    Ok(())
                } else {
                    Err(Error::Schema {
                        dir: self.inner.dir.clone(),
                        found,
                        expected: SCHEMA_VERSION,
                    })
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn set_schema_for_test(&self, version: u32) -> Result<()> {
        self.raw_tree(META_TREE)?
            .insert(SCHEMA_KEY, &version.to_be_bytes())?;
        self.flush()
    }
}

/// The fdatasync half of [`Store::flush`].
struct Syncer {
    mode: SyncMode,
    /// `<data-dir>/db`: sled's directory.
    db_dir: PathBuf,
    /// `<data-dir>/db/db`: sled's data file, every segment of its log.
    data_path: PathBuf,
    /// A second handle of the data file, for fdatasync. Opened read-only: fsync works on any descriptor.
    data: Option<File>,
    /// The files last seen in sled's directory and its `blobs/` directory. A flush that finds others syncs them
    /// and the directory, so that a new blob (a value too big for a segment) or snapshot survives a power cut too.
    seen: Mutex<(BTreeSet<OsString>, BTreeSet<OsString>)>,
}

impl Syncer {
    fn new(mode: SyncMode, data_dir: &Path) -> Result<Syncer> {
        let db_dir = data_dir.join("db");
        let data_path = db_dir.join("db");
        let sync_err = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| Error::Sync { path, cause }
        };
        let mut syncer = Syncer {
            mode,
            data: None,
            seen: Mutex::new((BTreeSet::new(), BTreeSet::new())),
            db_dir,
            data_path,
        };
        if mode == SyncMode::Os {
            return Ok(syncer);
        }
        syncer.data = Some(File::open(&syncer.data_path).map_err(sync_err(&syncer.data_path))?);
        // sled writes its `conf` file without a sync and never syncs a directory: make the database's files and
        // their names durable once, before anything is accepted.
        let conf = syncer.db_dir.join("conf");
        if conf.is_file() {
            File::open(&conf)
                .and_then(|f| f.sync_all())
                .map_err(sync_err(&conf))?;
        }
        sync_dir(data_dir)?;
        let mut seen = syncer.seen.lock();
        *seen = (list(&syncer.db_dir)?, list(&syncer.db_dir.join("blobs"))?);
        drop(seen);
        sync_dir(&syncer.db_dir)?;
        Ok(syncer)
    }

    fn sync(&self) -> Result<()> {
        let Some(data) = &self.data else {
            return Ok(());
        };
        data.sync_data().map_err(|cause| Error::Sync {
            path: self.data_path.clone(),
            cause,
        })?;
        let blobs_dir = self.db_dir.join("blobs");
        let (db_now, blobs_now) = (list(&self.db_dir)?, list(&blobs_dir)?);
        let mut seen = self.seen.lock();
        if blobs_now != seen.1 {
            for name in blobs_now.difference(&seen.1) {
                let path = blobs_dir.join(name);
                // A blob removed again since the listing needs no sync.
                match File::open(&path) {
                    Ok(file) => file
                        .sync_all()
                        .map_err(|cause| Error::Sync { path, cause })?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(cause) => return Err(Error::Sync { path, cause }),
                }
            }
            sync_dir(&blobs_dir)?;
            seen.1 = blobs_now;
        }
        if db_now != seen.0 {
            // New snapshots are synced by sled before their rename; the rename itself is in the directory.
            sync_dir(&self.db_dir)?;
            seen.0 = db_now;
        }
        Ok(())
    }
}

/// The names in a directory; an absent directory has none.
fn list(dir: &Path) -> Result<BTreeSet<OsString>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(|cause| Error::Sync {
                path: dir.to_path_buf(),
                cause,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(cause) => Err(Error::Sync {
            path: dir.to_path_buf(),
            cause,
        }),
    }
}

/// fsync of a directory: makes the names in it (created, renamed, removed files) durable.
fn sync_dir(dir: &Path) -> Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(cause) => Err(Error::Sync {
            path: dir.to_path_buf(),
            cause,
        }),
    }
}

/// How long to wait for sled's own file lock once ours is held; see [`open_sled`].
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens sled, waiting (bounded) for its file lock.
///
/// Our `LOCK` file is already held, so no other process has this database. sled's lock can still be held for a
/// moment by this very process: a dropped `sled::Db` releases its lock only when its background I/O threads let go
/// of the file, which happens shortly after the drop. Reopening in that window (a restart inside one process, as
/// tests do) gets `WouldBlock`; waiting for it to clear is correct, failing is not.
fn open_sled(config: &sled::Config) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + SLED_LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return Ok(other?),
        }
    }
}

/// A sled tree whose values are `V`, encoded with postcard.
pub struct TypedTree<V> {
    tree: sled::Tree,
    name: &'static str,
    _value: PhantomData<fn() -> V>,
}

impl<V> Clone for TypedTree<V> {
    fn clone(&self) -> Self {
        TypedTree {
            tree: self.tree.clone(),
            name: self.name,
            _value: PhantomData,
        }
    }
}

impl<V: Serialize + DeserializeOwned> TypedTree<V> {
    pub fn get(&self, key: &[u8]) -> Result<Option<V>> {
        match self.tree.get(key)? {
            Some(bytes) => Ok(Some(self.decode(&bytes)?)),
            None => Ok(None),
        }
    }

    pub fn insert(&self, key: &[u8], value: &V) -> Result<()> {
        self.tree.insert(key, encode(value))?;
        Ok(())
    }

    pub fn remove(&self, key: &[u8]) -> Result<()> {
        self.tree.remove(key)?;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Every key in order, without decoding values.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = Result<sled::IVec>> + '_ {
        self.tree.iter().keys().map(|k| k.map_err(Error::from))
    }

    /// Every entry in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, V)>> + '_ {
        self.tree.iter().map(move |entry| {
            let (key, bytes) = entry?;
            Ok((key, self.decode(&bytes)?))
        })
    }

    /// Entries in a key range, in key order (reverse with `.rev()`).
    pub fn range<R: std::ops::RangeBounds<Vec<u8>>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, V)>> + '_ {
        self.tree.range(range).map(move |entry| {
            let (key, bytes) = entry?;
            Ok((key, self.decode(&bytes)?))
        })
    }

    fn decode(&self, bytes: &[u8]) -> Result<V> {
        decode(self.name, bytes)
    }
}

pub(crate) fn encode<V: Serialize>(value: &V) -> Vec<u8> {
    postcard::to_allocvec(value).expect("postcard encodes every serde value to a Vec")
}

pub(crate) fn decode<V: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<V> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
        tree,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Result<Store> {
        Store::open(dir)
    }

    #[test]
    fn second_open_of_a_data_dir_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("temp dir");
        let _first = open(dir.path()).expect("first open");
        let err = open(dir.path()).expect_err("second open must fail");
        assert!(matches!(err, Error::DataDirInUse { .. }), "{err:?}");
        assert!(err
            .to_string()
            .contains("in use by another dreamos process"));
    }

    #[test]
    fn lock_is_released_when_the_store_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(open(dir.path()).expect("first open"));
        open(dir.path()).expect("reopen after drop");
    }

    #[test]
    fn typed_tree_round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = open(dir.path()).expect("open");
            let tree = store.typed::<(String, u32)>("things").expect("tree");
            tree.insert(b"a", &("alpha".to_string(), 1))
                .expect("insert");
            tree.insert(b"b", &("beta".to_string(), 2)).expect("insert");
            store.flush().expect("flush");
        }
        let store = open(dir.path()).expect("reopen");
        let tree = store.typed::<(String, u32)>("things").expect("tree");
        assert_eq!(tree.get(b"b").expect("get"), Some(("beta".to_string(), 2)));
        let keys: Vec<_> = tree.iter().rev().map(|e| e.expect("entry").1 .1).collect();
        assert_eq!(keys, [2, 1]);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        open(dir.path())
            .expect("open")
            .set_schema_for_test(SCHEMA_VERSION + 1)
            .expect("set");
        let err = open(dir.path()).expect_err("newer schema");
        assert!(err.to_string().contains("schema version"), "{err}");
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(dir.path()).expect("open");
        store
            .raw_tree("things")
            .expect("tree")
            .insert(b"k", &[0xff, 0xff, 0xff][..])
            .expect("insert");
        let tree = store.typed::<String>("things").expect("tree");
        assert!(matches!(tree.get(b"k"), Err(Error::Corrupt { .. })));
    }
}
