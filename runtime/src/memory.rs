//! Dreamscribe's entries: the swarm's narrative memory, as sled keeps it.
//!
//! An entry is a short readable text with its author, kind, tags, time and links to the durable ids it tells
//! about (messages, tasks, agents, files). Entries are keyed by their ULID, whose first 48 bits are the time, so
//! sled's order is the journal's order. The search index (in `dreamos_agents::memory`) is derived from this tree;
//! what it needs to catch up after a crash — every entry after the last one it committed, and every removal after
//! the last one it applied — is here too: removals are recorded in the `memory_gone` tree under a sequence number
//! until the index has applied them.
//!
//! Everything here is data, its checks, and the trees; the writer that makes entries durable before they are
//! acknowledged lives in `dreamos_agents::memory`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::error::Result;
use crate::message::{MessageId, Millis};
use crate::store::{Store, TypedTree};
use crate::task::TaskId;

const ENTRIES_TREE: &str = "memory";
const GONE_TREE: &str = "memory_gone";

/// An entry's id: a ULID, so ids sort by time and name no machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntryId(pub Ulid);

impl EntryId {
    /// The key of this entry in the `memory` tree: the ULID's 16 bytes, big-endian (time order).
    pub fn key(self) -> [u8; 16] {
        self.0.to_bytes()
    }

    pub fn from_key(key: &[u8]) -> Option<EntryId> {
        let bytes: [u8; 16] = key.try_into().ok()?;
        Some(EntryId(Ulid::from_bytes(bytes)))
    }

    /// When the entry was written.
    pub fn time(self) -> Millis {
        Millis(self.0.timestamp_ms())
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for EntryId {
    type Err = String;

    fn from_str(s: &str) -> Result<EntryId, String> {
        Ulid::from_string(s.trim()).map(EntryId).map_err(|_| {
            format!(
                "`{}` is not a memory entry id; ids are 26-character ULIDs such as 01JDQ6Z3M4N5P6Q7R8S9T0V1W2 (/journal shows them)",
                clip(s)
            )
        })
    }
}

/// Who wrote an entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Author {
    /// The swarm itself: the automatic journal.
    Swarm,
    /// An agent, from a skill.
    Agent(String),
    /// A person, through a frontend: `user` is the frontend's id of them (a Discord user id, `console`), `name` how
    /// people call them.
    Person {
        frontend: String,
        user: String,
        name: String,
    },
}

impl Author {
    /// The author as filters and the index name it: `swarm`, the agent's name, or `FRONTEND:USER` for a person.
    pub fn key(&self) -> String {
        match self {
            Author::Swarm => "swarm".to_string(),
            Author::Agent(name) => name.clone(),
            Author::Person { frontend, user, .. } => format!("{frontend}:{user}"),
        }
    }

    /// The agent that wrote it, if an agent did.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Author::Agent(name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Author {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Author::Swarm => f.write_str("swarm"),
            Author::Agent(name) => f.write_str(name),
            Author::Person {
                frontend,
                user,
                name,
            } if name != user => write!(f, "{name} ({frontend}:{user})"),
            Author::Person { frontend, user, .. } => write!(f, "{frontend}:{user}"),
        }
    }
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Something that happened (most of the automatic journal).
    Event,
    /// What was decided, and why.
    Decision,
    Note,
    /// A summary of a longer stretch of work or talk.
    Summary,
    /// Something true that later work can rely on.
    Fact,
}

impl EntryKind {
    pub const ALL: [EntryKind; 5] = [
        EntryKind::Event,
        EntryKind::Decision,
        EntryKind::Note,
        EntryKind::Summary,
        EntryKind::Fact,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Event => "event",
            EntryKind::Decision => "decision",
            EntryKind::Note => "note",
            EntryKind::Summary => "summary",
            EntryKind::Fact => "fact",
        }
    }
}

impl FromStr for EntryKind {
    type Err = String;

    fn from_str(s: &str) -> Result<EntryKind, String> {
        EntryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown entry kind `{}`; use one of: event, decision, note, summary, fact",
                    clip(s)
                )
            })
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A place in a repository of the code index: `repo:path:line`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileLink {
    pub repo: String,
    pub path: String,
    pub line: u32,
}

impl fmt::Display for FileLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.repo, self.path, self.line)
    }
}

impl FromStr for FileLink {
    type Err = String;

    fn from_str(s: &str) -> Result<FileLink, String> {
        let bad = || {
            format!(
                "`{}` is not a file link; write repo:path:line, such as tokio:tokio/src/task/blocking.rs:42",
                clip(s)
            )
        };
        let (rest, line) = s.rsplit_once(':').ok_or_else(bad)?;
        let (repo, path) = rest.split_once(':').ok_or_else(bad)?;
        let line: u32 = line.parse().map_err(|_| bad())?;
        if repo.is_empty() || path.is_empty() || line == 0 {
            return Err(bad());
        }
        Ok(FileLink {
            repo: repo.to_string(),
            path: path.to_string(),
            line,
        })
    }
}

/// The durable ids an entry tells about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    pub messages: Vec<MessageId>,
    pub tasks: Vec<TaskId>,
    pub agents: Vec<String>,
    pub files: Vec<FileLink>,
}

impl Links {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.tasks.is_empty()
            && self.agents.is_empty()
            && self.files.is_empty()
    }
}

/// One entry of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: EntryId,
    pub author: Author,
    pub kind: EntryKind,
    pub text: String,
    pub tags: Vec<String>,
    pub links: Links,
}

impl Entry {
    /// When it was written (the id's time).
    pub fn at(&self) -> Millis {
        self.id.time()
    }

    /// Every agent the entry concerns: its author, if an agent, and the agents it links to.
    pub fn agents(&self) -> impl Iterator<Item = &str> {
        self.author
            .agent()
            .into_iter()
            .chain(self.links.agents.iter().map(String::as_str))
    }

    /// What the entry costs in the store, roughly: for the writer's bounds.
    pub fn size_hint(&self) -> usize {
        96 + self.text.len()
            + self.tags.iter().map(|t| t.len() + 2).sum::<usize>()
            + self.links.messages.len() * 17
            + self.links.tasks.len() * 9
            + self.links.agents.iter().map(|a| a.len() + 2).sum::<usize>()
            + self
                .links
                .files
                .iter()
                .map(|f| f.repo.len() + f.path.len() + 8)
                .sum::<usize>()
    }
}

/// Checks an entry's text: not blank, at most `max_bytes`.
pub fn check_text(text: &str, max_bytes: usize) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the entry's text is empty; write what should be remembered".to_string());
    }
    if text.len() > max_bytes {
        return Err(format!(
            "the entry's text is {} bytes, over the limit of {max_bytes} ([memory] max_text_bytes); shorten it or split it into several entries",
            text.len()
        ));
    }
    Ok(())
}

/// Checks tags: each 1–32 characters of lowercase letters, digits, `-`, `_`, `.` and `/`, starting with a letter
/// or digit; at most `max` of them, no repeats. Returns them in the order given.
pub fn check_tags(tags: &[String], max: usize) -> Result<Vec<String>, String> {
    if tags.len() > max {
        return Err(format!(
            "{} tags given, at most {max} allowed ([memory] max_tags)",
            tags.len()
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        let ok = !tag.is_empty()
            && tag.len() <= 32
            && tag
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && tag.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | '/')
            });
        if !ok {
            return Err(format!(
                "`{}` is not a valid tag: use 1-32 lowercase letters, digits, '-', '_', '.' or '/', starting with a letter or digit (tags are comma-separated: --tags deploy,ci)",
                clip(tag)
            ));
        }
        if out.iter().any(|t| t == tag) {
            return Err(format!("tag `{tag}` is given twice"));
        }
        out.push(tag.to_string());
    }
    Ok(out)
}

/// The trees Dreamscribe keeps: entries by id, and removals the search index has yet to apply.
#[derive(Clone)]
pub struct MemoryStore {
    entries: TypedTree<Entry>,
    gone: TypedTree<Vec<EntryId>>,
}

impl MemoryStore {
    pub fn open(store: &Store) -> Result<MemoryStore> {
        Ok(MemoryStore {
            entries: store.typed(ENTRIES_TREE)?,
            gone: store.typed(GONE_TREE)?,
        })
    }

    /// Writes an entry (durable at the store's next flush).
    pub fn insert(&self, entry: &Entry) -> Result<()> {
        self.entries.insert(&entry.id.key(), entry)
    }

    pub fn get(&self, id: EntryId) -> Result<Option<Entry>> {
        self.entries.get(&id.key())
    }

    /// Removes entries and records the removal under `seq` for the search index. Returns those that existed.
    pub fn remove(&self, ids: &[EntryId], seq: u64) -> Result<Vec<Entry>> {
        let mut removed = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(entry) = self.entries.get(&id.key())? {
                self.entries.remove(&id.key())?;
                removed.push(entry);
            }
        }
        if !removed.is_empty() {
            let ids: Vec<EntryId> = removed.iter().map(|e| e.id).collect();
            self.gone.insert(&seq.to_be_bytes(), &ids)?;
        }
        Ok(removed)
    }

    /// The newest entry's id.
    pub fn last_id(&self) -> Result<Option<EntryId>> {
        match self.entries.keys().next_back() {
            Some(key) => Ok(EntryId::from_key(&key?)),
            None => Ok(None),
        }
    }

    /// How many entries there are (walks the tree: for start-up and tests).
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// Entries newest first, starting below `before` (all when `None`).
    pub fn newest_first(
        &self,
        before: Option<EntryId>,
    ) -> impl Iterator<Item = Result<Entry>> + '_ {
        use std::ops::Bound;
        let end = match before {
            Some(b) => Bound::Excluded(b.key().to_vec()),
            None => Bound::Unbounded,
        };
        self.entries
            .range((Bound::Unbounded, end))
            .rev()
            .map(|r| r.map(|(_, e)| e))
    }

    /// Entries oldest first, starting after `after` (all when `None`).
    pub fn oldest_first(&self, after: Option<EntryId>) -> impl Iterator<Item = Result<Entry>> + '_ {
        use std::ops::Bound;
        let start = match after {
            Some(a) => Bound::Excluded(a.key().to_vec()),
            None => Bound::Unbounded,
        };
        self.entries
            .range((start, Bound::Unbounded))
            .map(|r| r.map(|(_, e)| e))
    }

    /// Ids of the oldest entries, without decoding them.
    pub fn oldest_ids(&self, limit: usize) -> Result<Vec<EntryId>> {
        self.entries
            .keys()
            .take(limit)
            .map(|k| k.map(|k| EntryId::from_key(&k).expect("memory keys are 16-byte ULIDs")))
            .collect()
    }

    /// Removals recorded after `seq`, in order, for the search index to apply.
    pub fn gone_after(&self, seq: u64) -> Result<Vec<(u64, Vec<EntryId>)>> {
        self.gone
            .range((seq + 1).to_be_bytes().to_vec()..)
            .map(|r| r.map(|(k, ids)| (seq_of(&k), ids)))
            .collect()
    }

    /// The latest removal's sequence number (0 when none is recorded).
    pub fn last_gone_seq(&self) -> Result<u64> {
        match self.gone.keys().next_back() {
            Some(key) => Ok(seq_of(&key?)),
            None => Ok(0),
        }
    }

    /// Forgets removal records up to `seq`: the index has committed them.
    pub fn trim_gone(&self, seq: u64) -> Result<()> {
        let keys: Vec<_> = self
            .gone
            .keys()
            .take_while(|k| k.as_ref().map_or(true, |k| seq_of(k) <= seq))
            .collect::<Result<_>>()?;
        for key in keys {
            self.gone.remove(&key)?;
        }
        Ok(())
    }
}

fn seq_of(key: &[u8]) -> u64 {
    u64::from_be_bytes(key.try_into().unwrap_or([0; 8]))
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(80) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: Ulid, text: &str) -> Entry {
        Entry {
            id: EntryId(id),
            author: Author::Person {
                frontend: "console".into(),
                user: "console".into(),
                name: "console".into(),
            },
            kind: EntryKind::Note,
            text: text.to_string(),
            tags: vec!["a".into()],
            links: Links {
                messages: vec![MessageId::new()],
                tasks: vec![TaskId(3)],
                agents: vec!["agent-1".into()],
                files: vec!["r:src/a.rs:3".parse().expect("test step")],
            },
        }
    }

    #[test]
    fn entries_round_trip_in_time_order_and_removals_are_recorded() {
        let dir = tempfile::tempdir().expect("test step");
        let store = Store::open(dir.path()).expect("test step");
        let memory = MemoryStore::open(&store).expect("test step");
        let ids: Vec<Ulid> = (0..5).map(|i| Ulid::from_parts(1000 + i, 7)).collect();
        for (i, id) in ids.iter().enumerate().rev() {
            memory
                .insert(&entry(*id, &format!("entry {i}")))
                .expect("test step");
        }
        let newest: Vec<String> = memory
            .newest_first(None)
            .map(|e| e.expect("test step").text)
            .collect();
        assert_eq!(
            newest,
            ["entry 4", "entry 3", "entry 2", "entry 1", "entry 0"]
        );
        let page: Vec<String> = memory
            .newest_first(Some(EntryId(ids[3])))
            .map(|e| e.expect("test step").text)
            .collect();
        assert_eq!(page, ["entry 2", "entry 1", "entry 0"]);
        let after: Vec<String> = memory
            .oldest_first(Some(EntryId(ids[2])))
            .map(|e| e.expect("test step").text)
            .collect();
        assert_eq!(after, ["entry 3", "entry 4"]);
        let got = memory
            .get(EntryId(ids[1]))
            .expect("test step")
            .expect("test step");
        assert_eq!(
            (got.text.as_str(), got.links.tasks.as_slice()),
            ("entry 1", &[TaskId(3)][..])
        );
        assert_eq!(got.links.files[0].to_string(), "r:src/a.rs:3");
        assert_eq!(memory.last_id().expect("test step"), Some(EntryId(ids[4])));

        let removed = memory
            .remove(&[EntryId(ids[0]), EntryId(Ulid::nil())], 1)
            .expect("test step");
        assert_eq!(removed.len(), 1);
        memory.remove(&[EntryId(ids[1])], 2).expect("test step");
        assert_eq!(memory.count(), 3);
        assert_eq!(memory.last_gone_seq().expect("test step"), 2);
        assert_eq!(
            memory.gone_after(1).expect("test step"),
            vec![(2, vec![EntryId(ids[1])])]
        );
        memory.trim_gone(1).expect("test step");
        assert_eq!(memory.gone_after(0).expect("test step").len(), 1);
        assert_eq!(
            memory.oldest_ids(1).expect("test step"),
            vec![EntryId(ids[2])]
        );
    }

    #[test]
    fn bad_text_tags_ids_and_links_are_refused_with_what_to_do() {
        assert!(check_text("  ", 10)
            .expect_err("must fail")
            .contains("empty"));
        assert!(check_text("12345678901", 10)
            .expect_err("must fail")
            .contains("max_text_bytes"));
        assert!(check_text("fine", 10).is_ok());
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_tags(&tags(&["deploy", "ci"]), 4).expect("test step"),
            ["deploy", "ci"]
        );
        assert!(check_tags(&tags(&["Deploy"]), 4)
            .expect_err("must fail")
            .contains("not a valid tag"));
        assert!(check_tags(&tags(&[""]), 4)
            .expect_err("must fail")
            .contains("not a valid tag"));
        assert!(check_tags(&tags(&["a b"]), 4)
            .expect_err("must fail")
            .contains("not a valid tag"));
        assert!(check_tags(&tags(&["a", "a"]), 4)
            .expect_err("must fail")
            .contains("twice"));
        assert!(check_tags(&tags(&["a", "b", "c"]), 2)
            .expect_err("must fail")
            .contains("max_tags"));
        assert!("nope"
            .parse::<EntryId>()
            .expect_err("must fail")
            .contains("ULID"));
        assert!("repo:path".parse::<FileLink>().is_err());
        assert!("repo:path:0".parse::<FileLink>().is_err());
        assert_eq!(
            "tokio:src/a:b.rs:12"
                .parse::<FileLink>()
                .expect("test step")
                .to_string(),
            "tokio:src/a:b.rs:12"
        );
        assert!("chat"
            .parse::<EntryKind>()
            .expect_err("must fail")
            .contains("decision"));
    }
}

const VECTORS_TREE: &str = "memory_vectors";

/// A memory entry's embedding, with the model that made it (a vector of another model is not compared).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryVector {
    pub model: String,
    pub vector: Vec<f32>,
}

/// Embeddings of memory entries by entry id, derived like the search index: they can be made again from the
/// entries at any time, so they are written without a sync of their own.
#[derive(Clone)]
pub struct VectorStore {
    tree: TypedTree<EntryVector>,
}

impl VectorStore {
    pub fn open(store: &Store) -> Result<VectorStore> {
        Ok(VectorStore {
            tree: store.typed(VECTORS_TREE)?,
        })
    }

    pub fn get(&self, id: EntryId) -> Result<Option<EntryVector>> {
        self.tree.get(&id.key())
    }

    pub fn put(&self, id: EntryId, vector: &EntryVector) -> Result<()> {
        self.tree.insert(&id.key(), vector)
    }

    pub fn remove(&self, id: EntryId) -> Result<()> {
        self.tree.remove(&id.key())
    }

    /// Every id with a vector.
    pub fn ids(&self) -> impl Iterator<Item = Result<Option<EntryId>>> + '_ {
        self.tree.keys().map(|k| k.map(|k| EntryId::from_key(&k)))
    }

    pub fn len(&self) -> usize {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}
