//! References and change impact against a real Tantivy index of a fixture repository whose graph is known:
//!
//! ```text
//! lib.rs --mod--> store.rs, api.rs, cli.rs, other.rs
//! api.rs --use--> store.rs        cli.rs --use--> api.rs
//! Store::open <- handle (api) <- route (api) <- main_loop (cli)
//! ```

use super::search::tests::write_repo;
use super::{CodeIndex, ImpactOptions, ImpactTarget, IndexOptions, RefsOptions};
use crate::error::Error;
use crate::model::{RefKind, SymbolKind};

const LIB: &str = "mod store;\nmod api;\nmod cli;\nmod other;\n";
const STORE: &str = "pub struct Store;\n\
impl Store {\n\
    pub fn open() -> Store {\n\
        Store\n\
    }\n\
    pub fn get(&self) {}\n\
}\n\
pub fn helper() {}\n";
const API: &str = "use crate::store::Store;\n\
pub fn handle() {\n\
    let s = Store::open();\n\
    s.get();\n\
}\n\
pub fn route() {\n\
    handle();\n\
    handle();\n\
}\n";
const CLI: &str = "use crate::api::route;\n\
pub fn main_loop() {\n\
    route();\n\
}\n";
const OTHER: &str = "pub fn unrelated() {}\n";

struct Fixture {
    _repo: tempfile::TempDir,
    _dir: tempfile::TempDir,
    index: CodeIndex,
}

fn fixture() -> Fixture {
    let repo = write_repo(&[
        ("src/lib.rs", LIB),
        ("src/store.rs", STORE),
        ("src/api.rs", API),
        ("src/cli.rs", CLI),
        ("src/other.rs", OTHER),
        ("Cargo.toml", "[package]\nname = \"app\"\n"),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let index = CodeIndex::open(dir.path()).expect("open index");
    index
        .index_repo("app", repo.path(), &IndexOptions::default(), &|_| {})
        .expect("index_repo");
    Fixture {
        _repo: repo,
        _dir: dir,
        index,
    }
}

fn refs(index: &CodeIndex, name: &str, kind: Option<RefKind>, limit: usize) -> super::Refs {
    index
        .refs(
            name,
            &RefsOptions {
                repo: None,
                kind,
                limit,
            },
        )
        .expect("refs")
}

#[test]
fn refs_list_definitions_first_then_every_use_with_its_enclosing_definition() {
    let fx = fixture();
    let r = refs(&fx.index, "Store", None, 20);
    let defs: Vec<(&str, SymbolKind, u32)> = r
        .definitions
        .iter()
        .map(|d| (d.path.as_str(), d.kind, d.line))
        .collect();
    assert!(
        defs.contains(&("src/store.rs", SymbolKind::Struct, 1)),
        "definitions {defs:?}"
    );
    // Each definition kept has its snippet (read only for the definitions kept).
    assert!(
        r.definitions.iter().all(|d| d.snippet.contains("Store")),
        "{:?}",
        r.definitions
    );
    let uses: Vec<(&str, u32, RefKind, Option<&str>)> = r
        .uses
        .iter()
        .map(|u| {
            (
                u.path.as_str(),
                u.line,
                u.kind,
                u.within.as_ref().map(|w| w.name.as_str()),
            )
        })
        .collect();
    assert_eq!(
        uses,
        vec![
            ("src/api.rs", 1, RefKind::Import, None),
            ("src/store.rs", 3, RefKind::Type, Some("open")),
        ],
        "uses of Store in path order"
    );
    assert_eq!(
        (r.total, r.files, r.imports, r.types, r.calls),
        (2, 2, 1, 1, 0)
    );
    let hit = &r.uses[1];
    assert!(
        hit.snippet.contains("pub fn open() -> Store {"),
        "snippet {:?}",
        hit.snippet
    );
}

#[test]
fn refs_filter_by_kind_and_count_past_the_limit() {
    let fx = fixture();
    let calls = refs(&fx.index, "handle", Some(RefKind::Call), 1);
    assert_eq!(calls.total, 2, "route calls handle twice");
    assert_eq!(calls.uses.len(), 1, "the limit holds");
    assert_eq!(calls.uses[0].line, 7);
    assert_eq!(
        calls.uses[0]
            .within
            .as_ref()
            .map(|w| (w.name.as_str(), w.kind)),
        Some(("route", SymbolKind::Function))
    );
    assert_eq!(calls.definitions.len(), 1);
    // `Store` is used as an import and a type, never called: the kind filter says so with no uses.
    let none = refs(&fx.index, "Store", Some(RefKind::Call), 10);
    assert_eq!((none.total, none.uses.len()), (0, 0));
    assert!(!none.definitions.is_empty());
    // Names are case-sensitive.
    let other = fx.index.refs("store", &RefsOptions::default());
    assert!(matches!(other, Err(Error::UnknownSymbol(_))), "{other:?}");
}

#[test]
fn refs_of_a_name_nothing_has_suggest_names_like_it() {
    let fx = fixture();
    let err = fx
        .index
        .refs("Stor", &RefsOptions::default())
        .expect_err("nothing is named Stor");
    let text = err.to_string();
    assert!(matches!(err, Error::UnknownSymbol(_)), "{err:?}");
    assert!(
        text.contains("\"Stor\"") && text.contains("\"Store\""),
        "{text}"
    );
}

#[test]
fn refs_reject_bad_names_and_unknown_repositories() {
    let fx = fixture();
    for bad in ["", "   ", "Store::open", "a b", "open()", &"x".repeat(300)] {
        let err = fx
            .index
            .refs(bad, &RefsOptions::default())
            .expect_err("a bad name is refused");
        assert!(matches!(err, Error::Query(_)), "{bad:?}: {err:?}");
    }
    let err = fx
        .index
        .refs(
            "Store",
            &RefsOptions {
                repo: Some("nope".to_string()),
                ..RefsOptions::default()
            },
        )
        .expect_err("unknown repo");
    assert!(matches!(err, Error::UnknownRepo(_)), "{err:?}");
    let ok = fx
        .index
        .refs(
            "Store",
            &RefsOptions {
                repo: Some("app".to_string()),
                ..RefsOptions::default()
            },
        )
        .expect("refs in app");
    assert_eq!(ok.total, 2);
}

#[test]
fn refs_follow_reindexing() {
    let fx = fixture();
    std::fs::write(
        fx._repo.path().join("src/other.rs"),
        "use crate::store::Store;\npub fn unrelated(s: &Store) {}\n",
    )
    .expect("write");
    fx.index
        .index_repo("app", fx._repo.path(), &IndexOptions::default(), &|_| {})
        .expect("reindex");
    let r = refs(&fx.index, "Store", None, 20);
    assert_eq!((r.total, r.files), (4, 3), "{:?}", r.uses);
    std::fs::remove_file(fx._repo.path().join("src/api.rs")).expect("remove");
    fx.index
        .index_repo("app", fx._repo.path(), &IndexOptions::default(), &|_| {})
        .expect("reindex");
    let r = refs(&fx.index, "Store", None, 20);
    assert_eq!((r.total, r.files), (3, 2), "{:?}", r.uses);
}

fn impact(index: &CodeIndex, target: &str, depth: u32) -> super::Impact {
    index
        .impact(
            target,
            &ImpactOptions {
                depth,
                ..ImpactOptions::default()
            },
        )
        .expect("impact")
}

#[test]
fn impact_of_a_file_is_its_transitive_importers_with_the_uses_of_its_names() {
    let fx = fixture();
    let one = impact(&fx.index, "src/store.rs", 1);
    assert_eq!(
        one.target,
        ImpactTarget::File {
            repo: "app".into(),
            path: "src/store.rs".into()
        }
    );
    let files: Vec<(&str, u32, u64)> = one
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.depth, f.uses))
        .collect();
    // api.rs uses Store (import), open and get (calls); lib.rs only declares the module.
    assert_eq!(files, vec![("src/api.rs", 1, 3), ("src/lib.rs", 1, 0)]);
    let api_defs: Vec<(&str, u32)> = one.files[0]
        .definitions
        .iter()
        .map(|d| (d.name.as_str(), d.uses))
        .collect();
    assert_eq!(api_defs, vec![("handle", 2)]);
    let two = impact(&fx.index, "src/store.rs", 2);
    let files: Vec<(&str, u32)> = two
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.depth))
        .collect();
    assert_eq!(
        files,
        vec![("src/api.rs", 1), ("src/lib.rs", 1), ("src/cli.rs", 2)]
    );
    assert_eq!((two.total_files, two.total_uses), (3, 3));
    assert!(!two.truncated);
}

#[test]
fn impact_of_a_symbol_follows_its_users_step_by_step() {
    let fx = fixture();
    let chain = |depth| -> Vec<(String, String, u32)> {
        let mut out: Vec<(String, String, u32)> = impact(&fx.index, "open", depth)
            .files
            .iter()
            .flat_map(|f| {
                f.definitions
                    .iter()
                    .map(|d| (f.path.clone(), d.name.clone(), d.depth))
            })
            .collect();
        out.sort_by_key(|(_, _, d)| *d);
        out
    };
    let s = |p: &str, n: &str, d: u32| (p.to_string(), n.to_string(), d);
    assert_eq!(chain(1), vec![s("src/api.rs", "handle", 1)]);
    assert_eq!(
        chain(2),
        vec![s("src/api.rs", "handle", 1), s("src/api.rs", "route", 2)]
    );
    assert_eq!(
        chain(3),
        vec![
            s("src/api.rs", "handle", 1),
            s("src/api.rs", "route", 2),
            s("src/cli.rs", "main_loop", 3)
        ]
    );
    let full = impact(&fx.index, "open", 3);
    assert_eq!(full.total_definitions, 3);
    // cli.rs imports `route` and calls it once.
    let cli = full
        .files
        .iter()
        .find(|f| f.path == "src/cli.rs")
        .expect("cli.rs is reached");
    assert_eq!((cli.depth, cli.uses), (3, 2));
}

#[test]
fn impact_rejects_bad_depths_and_unknown_targets() {
    let fx = fixture();
    for depth in [0, super::MAX_IMPACT_DEPTH + 1, u32::MAX] {
        let err = fx
            .index
            .impact(
                "open",
                &ImpactOptions {
                    depth,
                    ..ImpactOptions::default()
                },
            )
            .expect_err("bad depth");
        assert!(matches!(err, Error::Query(_)), "depth {depth}: {err:?}");
    }
    let err = fx
        .index
        .impact("src/nothing.rs", &ImpactOptions::default())
        .expect_err("no such file");
    assert!(matches!(err, Error::UnknownFile(_)), "{err:?}");
    let err = fx
        .index
        .impact("nothing_at_all", &ImpactOptions::default())
        .expect_err("no such symbol");
    assert!(matches!(err, Error::UnknownSymbol(_)), "{err:?}");
    let err = fx
        .index
        .impact("", &ImpactOptions::default())
        .expect_err("empty");
    assert!(matches!(err, Error::Query(_)), "{err:?}");
    // A symbol defined but used nowhere has no impact, and that is an answer, not an error.
    let lone = impact(&fx.index, "unrelated", 2);
    assert!(lone.files.is_empty() && lone.total_files == 0);
}

#[test]
fn an_index_made_by_another_version_is_made_again_and_names_its_repositories() {
    use tantivy::schema::{Schema, STORED, STRING};
    let dir = tempfile::tempdir().expect("temp dir");
    // An older schema: no reference fields.
    let mut b = Schema::builder();
    let kind = b.add_text_field("kind", STRING);
    let repo = b.add_text_field("repo", STRING | STORED);
    let json = b.add_text_field("repo_json", STORED);
    let old = tantivy::Index::create_in_dir(dir.path(), b.build()).expect("old index");
    let mut writer: tantivy::IndexWriter = old.writer(15_000_000).expect("writer");
    let mut doc = tantivy::TantivyDocument::new();
    doc.add_text(kind, "repo");
    doc.add_text(repo, "app");
    doc.add_text(json, r#"{"root":"/src/app","last_indexed":1}"#);
    writer.add_document(doc).expect("add");
    writer.commit().expect("commit");
    drop(writer);
    drop(old);

    let index = CodeIndex::open(dir.path()).expect("an old index opens, made again");
    assert_eq!(
        index.stale_repos(),
        &[("app".to_string(), std::path::PathBuf::from("/src/app"))]
    );
    assert!(index.repos().expect("repos").is_empty());
    // Indexing works at once, and the next open is of this version.
    let src = write_repo(&[("a.rs", "fn alpha() { beta(); }\nfn beta() {}\n")]);
    index
        .index_repo("app", src.path(), &IndexOptions::default(), &|_| {})
        .expect("index again");
    assert_eq!(refs(&index, "beta", None, 5).total, 1);
    drop(index);
    let again = CodeIndex::open(dir.path()).expect("reopen");
    assert!(again.stale_repos().is_empty());
    assert_eq!(again.repos().expect("repos").len(), 1);
}
