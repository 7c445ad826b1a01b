//! Tests of the walker on real temporary directories: what is yielded, what is skipped and why.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::sync::Mutex;

use super::*;

/// Walks `root` and returns the yielded paths with their languages, sorted, and the report.
fn walk_all(root: &Path, opts: &WalkOptions) -> (Vec<(String, Option<Lang>)>, WalkReport) {
    let seen = Mutex::new(Vec::new());
    let report = walk(root, opts, |file| {
        assert_eq!(file.bytes, file.text.len() as u64);
        seen.lock()
            .expect("no test thread panics holding the lock")
            .push((file.rel_path, file.lang));
    })
    .expect("the walk succeeds");
    let mut seen = seen.into_inner().expect("no test thread panicked");
    seen.sort();
    (seen, report)
}

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent directories");
    }
    fs::write(path, content).expect("write a fixture file");
}

fn paths(seen: &[(String, Option<Lang>)]) -> Vec<&str> {
    seen.iter().map(|(p, _)| p.as_str()).collect()
}

/// Walks a fresh directory holding `files` and checks the yielded paths and the skip counts.
fn check(files: &[(&str, &[u8])], expected: &[&str], skipped: &[(SkipReason, u64)]) {
    let dir = tempfile::tempdir().expect("a temp dir");
    for (rel, content) in files {
        write(dir.path(), rel, content);
    }
    let (seen, report) = walk_all(dir.path(), &WalkOptions::default());
    assert_eq!(paths(&seen), expected);
    let want: BTreeMap<SkipReason, u64> = skipped.iter().copied().collect();
    assert_eq!(report.skipped, want);
    assert_eq!(report.files, expected.len() as u64);
}

#[test]
fn yields_text_files_with_their_languages() {
    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), "src/main.rs", "fn main() {}\n");
    write(dir.path(), "README.md", "# hi\n");
    write(dir.path(), "lib/a.py", "x = 1\n");
    let (seen, report) = walk_all(dir.path(), &WalkOptions::default());
    assert_eq!(
        seen,
        vec![
            ("README.md".to_string(), None),
            ("lib/a.py".to_string(), Some(Lang::Python)),
            ("src/main.rs".to_string(), Some(Lang::Rust)),
        ]
    );
    assert_eq!(report.bytes, 13 + 5 + 6);
}

#[test]
fn honours_ignore_files_and_hides_dot_files() {
    check(
        &[
            (".gitignore", b"target/\n*.log\n!keep.log\n"),
            ("target/debug/x.rs", b"fn x() {}"),
            ("a.log", b"noise"),
            ("keep.log", b"kept"),
            ("sub/.ignore", b"secret.txt\n"),
            ("sub/secret.txt", b"s"),
            ("sub/open.txt", b"o"),
            (".hidden/h.rs", b"fn h() {}"),
            (".git/config", b"[core]"),
            ("src/lib.rs", b"pub fn f() {}"),
        ],
        &["keep.log", "src/lib.rs", "sub/open.txt"],
        &[],
    );
}

#[test]
fn include_hidden_walks_dot_files_but_never_dot_git() {
    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), ".hidden/h.rs", "fn h() {}");
    write(dir.path(), ".git/HEAD", "ref: refs/heads/main");
    let opts = WalkOptions {
        include_hidden: true,
        ..WalkOptions::default()
    };
    let (seen, _) = walk_all(dir.path(), &opts);
    assert_eq!(paths(&seen), vec![".hidden/h.rs"]);
}

#[test]
fn binary_file_named_rs_is_skipped() {
    check(
        &[("bin.rs", b"fn a() {}\0\x01\x02"), ("ok.rs", b"fn b() {}")],
        &["ok.rs"],
        &[(SkipReason::Binary, 1)],
    );
}

#[test]
fn invalid_utf8_is_skipped() {
    check(
        &[("latin1.py", b"name = '\xe9t\xe9'\n")],
        &[],
        &[(SkipReason::InvalidUtf8, 1)],
    );
}

#[test]
fn a_50_mb_one_line_file_is_too_large() {
    let big = vec![b'a'; 50 * 1024 * 1024];
    check(
        &[("huge.js", &big), ("small.js", b"let a = 1;\n")],
        &["small.js"],
        &[(SkipReason::TooLarge, 1)],
    );
}

#[test]
fn the_size_limit_is_configurable() {
    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), "a.rs", "fn a() {}\n");
    let opts = WalkOptions {
        max_file_size: 4,
        ..WalkOptions::default()
    };
    let (seen, report) = walk_all(dir.path(), &opts);
    assert!(seen.is_empty());
    assert_eq!(report.skipped(SkipReason::TooLarge), 1);
}

#[test]
fn empty_files_are_yielded() {
    check(&[("empty.rs", b"")], &["empty.rs"], &[]);
}

#[test]
fn minified_web_assets_are_skipped_but_long_source_lines_are_not() {
    let one_long_line = format!("var a={};\n", "1+".repeat(4000));
    let wide = format!("{}\n", "x".repeat(400)).repeat(10);
    check(
        &[
            ("dist/app.js", one_long_line.as_bytes()),
            ("dist/app.min.txt", one_long_line.as_bytes()),
            ("style.css", wide.as_bytes()),
            ("gen.rs", one_long_line.as_bytes()),
            ("short.js", b"export default 1;"),
        ],
        &["gen.rs", "short.js"],
        &[(SkipReason::Minified, 3)],
    );
}

#[test]
fn symlink_loops_are_detected() {
    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), "a/file.rs", "fn f() {}");
    symlink(dir.path().join("a"), dir.path().join("a/back")).expect("make a loop link");
    symlink("self", dir.path().join("self")).expect("make a self link");
    let (seen, report) = walk_all(dir.path(), &WalkOptions::default());
    assert_eq!(paths(&seen), vec!["a/file.rs"]);
    assert_eq!(report.skipped(SkipReason::SymlinkLoop), 2, "{report:?}");
}

#[test]
fn symlinks_inside_the_root_are_followed_and_outside_are_not() {
    let outside = tempfile::tempdir().expect("a temp dir");
    write(outside.path(), "secret.rs", "fn secret() {}");
    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), "real/lib.rs", "fn lib() {}");
    symlink(dir.path().join("real/lib.rs"), dir.path().join("alias.rs")).expect("link inside");
    symlink(outside.path(), dir.path().join("escape")).expect("link a dir outside");
    symlink(outside.path().join("secret.rs"), dir.path().join("leak.rs"))
        .expect("link a file outside");
    symlink(dir.path().join("nothing"), dir.path().join("dangling.rs")).expect("dangling link");
    let (seen, report) = walk_all(dir.path(), &WalkOptions::default());
    assert_eq!(paths(&seen), vec!["alias.rs", "real/lib.rs"]);
    assert_eq!(
        report.skipped(SkipReason::SymlinkOutsideRoot),
        2,
        "{report:?}"
    );
    assert_eq!(report.skipped(SkipReason::BrokenSymlink), 1, "{report:?}");
}

/// Whether this process can read files whose permissions forbid it (it runs as root, or with
/// CAP_DAC_OVERRIDE): then chmod 000 does not make a file unreadable, and the test expects it to be read.
fn reads_despite_permissions(path: &Path) -> bool {
    fs::read(path).is_ok()
}

#[test]
fn unreadable_files_are_counted() {
    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), "locked.rs", "fn locked() {}");
    let locked = dir.path().join("locked.rs");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod 000");
    let privileged = reads_despite_permissions(&locked);
    let (seen, report) = walk_all(dir.path(), &WalkOptions::default());
    if privileged {
        assert_eq!(
            paths(&seen),
            vec!["locked.rs"],
            "a privileged process reads it anyway"
        );
        assert_eq!(report.skipped(SkipReason::Unreadable), 0);
    } else {
        assert!(seen.is_empty());
        assert_eq!(report.skipped(SkipReason::Unreadable), 1, "{report:?}");
    }
    assert_eq!(
        read_source(dir.path(), "locked.rs", &WalkOptions::default()).expect("read_source runs"),
        if privileged {
            ReadOutcome::Source(SourceFile {
                rel_path: "locked.rs".into(),
                lang: Some(Lang::Rust),
                text: "fn locked() {}".into(),
                bytes: 14,
            })
        } else {
            ReadOutcome::Skipped(SkipReason::Unreadable)
        }
    );
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).expect("restore permissions");
}

#[test]
fn an_empty_repository_is_an_empty_result() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (seen, report) = walk_all(dir.path(), &WalkOptions::default());
    assert!(seen.is_empty());
    assert_eq!(report, WalkReport::default());
}

#[test]
fn a_missing_root_or_a_file_root_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let missing = dir.path().join("nope");
    let err = walk(&missing, &WalkOptions::default(), |_| {}).expect_err("a missing root fails");
    assert!(err.to_string().contains("does not exist"), "{err}");
    write(dir.path(), "file.rs", "");
    let err = walk(&dir.path().join("file.rs"), &WalkOptions::default(), |_| {})
        .expect_err("a file root fails");
    assert!(err.to_string().contains("not a directory"), "{err}");
}

fn check_read(rel: &str, expected: ReadOutcome) {
    let outside = tempfile::tempdir().expect("a temp dir");
    write(outside.path(), "x.rs", "fn x() {}");
    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), ".gitignore", "build/\n");
    write(dir.path(), "src/a.rs", "fn a() {}");
    write(dir.path(), "build/out.rs", "fn out() {}");
    write(dir.path(), ".env", "KEY=1");
    write(dir.path(), "bin.dat", b"\0\0");
    symlink(outside.path().join("x.rs"), dir.path().join("leak.rs")).expect("link outside");
    symlink(outside.path(), dir.path().join("out")).expect("link a dir outside");
    symlink("loop", dir.path().join("loop")).expect("self link");
    let got = read_source(dir.path(), rel, &WalkOptions::default()).expect("read_source runs");
    assert_eq!(got, expected, "{rel}");
}

#[test]
fn read_source_applies_the_walker_rules() {
    check_read(
        "src/a.rs",
        ReadOutcome::Source(SourceFile {
            rel_path: "src/a.rs".into(),
            lang: Some(Lang::Rust),
            text: "fn a() {}".into(),
            bytes: 9,
        }),
    );
    check_read("build/out.rs", ReadOutcome::Ignored);
    check_read(".env", ReadOutcome::Ignored);
    check_read("src", ReadOutcome::Ignored);
    check_read("src/gone.rs", ReadOutcome::Missing);
    check_read("bin.dat", ReadOutcome::Skipped(SkipReason::Binary));
    check_read(
        "leak.rs",
        ReadOutcome::Skipped(SkipReason::SymlinkOutsideRoot),
    );
    check_read(
        "out/x.rs",
        ReadOutcome::Skipped(SkipReason::SymlinkOutsideRoot),
    );
    check_read("loop", ReadOutcome::Skipped(SkipReason::SymlinkLoop));
}

#[test]
fn read_source_refuses_paths_that_leave_the_root() {
    let dir = tempfile::tempdir().expect("a temp dir");
    for bad in ["", "/etc/passwd", "../x.rs", "a/../../x.rs", "."] {
        let err =
            read_source(dir.path(), bad, &WalkOptions::default()).expect_err("a bad path fails");
        assert!(err.to_string().contains("bad path"), "{bad}: {err}");
    }
}

#[test]
fn skip_reasons_serialize_as_snake_case() {
    for reason in SkipReason::ALL {
        let json = serde_json::to_string(&reason).expect("serializes");
        assert_eq!(json, format!("\"{}\"", reason.name()));
    }
}

#[test]
fn pseudo_filesystems_are_never_walked() {
    // The deepest mount point above a path decides: tmpfs under a devtmpfs holds real files.
    let mounts = vec![
        (PathBuf::from("/"), false),
        (PathBuf::from("/proc"), true),
        (PathBuf::from("/dev"), true),
        (PathBuf::from("/dev/shm"), false),
    ];
    assert!(in_pseudo(Path::new("/proc/1/status"), &mounts));
    assert!(in_pseudo(Path::new("/dev/null"), &mounts));
    assert!(!in_pseudo(Path::new("/dev/shm/repo/a.rs"), &mounts));
    assert!(!in_pseudo(Path::new("/home/me/repo"), &mounts));
    assert!(
        !in_pseudo(Path::new("/processes"), &mounts),
        "a prefix of a name is not a mount"
    );
    // This machine's own /proc is a pseudo-filesystem: walking it is refused at once, with a reason.
    if Path::new("/proc/self/mounts").exists() {
        let err = walk(Path::new("/proc"), &WalkOptions::default(), |_| {}).expect_err("refused");
        assert!(err.to_string().contains("pseudo-filesystem"), "{err}");
    }
}

#[test]
fn a_file_is_never_read_past_the_limit() {
    let dir = tempfile::tempdir().expect("a temp dir");
    write(dir.path(), "big.rs", "x".repeat(5000));
    let opts = WalkOptions {
        max_file_size: 1000,
        ..WalkOptions::default()
    };
    // Even when the size given is stale (the file grew after it was looked at), the read stops at the limit.
    let err =
        load(&dir.path().join("big.rs"), "big.rs".to_string(), 10, &opts).expect_err("too large");
    assert_eq!(err, SkipReason::TooLarge);
}
