//! Tests of import resolution per language and of the dependency graph.

use super::*;

const FILES: &[&str] = &[
    // Rust: a workspace with two crates.
    "Cargo.toml",
    "core/Cargo.toml",
    "core/src/lib.rs",
    "core/src/store.rs",
    "core/src/store/log.rs",
    "core/src/net/mod.rs",
    "core/src/net/http.rs",
    "app/Cargo.toml",
    "app/src/main.rs",
    "app/src/cli.rs",
    // Python: a root package and a src/ layout project.
    "pkg/__init__.py",
    "pkg/util.py",
    "pkg/sub/__init__.py",
    "pkg/sub/models.py",
    "tools/pyproject.toml",
    "tools/src/toolkit/__init__.py",
    "tools/src/toolkit/cli.py",
    // JS/TS.
    "web/src/app.ts",
    "web/src/util.ts",
    "web/src/components/index.tsx",
    "web/src/legacy.js",
    "web/types/api.d.ts",
    // Go.
    "go.mod",
    "cmd/server/main.go",
    "internal/store/log.go",
    "internal/store/index.go",
    "internal/store/log_test.go",
    // Java: two source roots.
    "svc/src/main/java/com/acme/App.java",
    "svc/src/main/java/com/acme/util/Strings.java",
    "svc/src/main/java/com/acme/util/Lists.java",
    "svc/src/test/java/com/acme/AppTest.java",
    "other/src/main/java/com/acme/util/Strings.java",
    // C/C++.
    "c/src/main.c",
    "c/src/list.h",
    "c/include/mylib/api.h",
    "c/vendor/zlib/zlib.h",
];

fn resolver() -> Resolver {
    Resolver::new(
        FILES.iter().copied(),
        [
            ("Cargo.toml".to_string(), "[workspace]\nmembers = [\"core\", \"app\"]\n".to_string()),
            (
                "core/Cargo.toml".to_string(),
                "[package]\nname = \"dream-core\"\nversion = \"0.1.0\"\n\n[dependencies]\nname = \"x\"\n".to_string(),
            ),
            ("app/Cargo.toml".to_string(), "[package]\nname = 'app'\n".to_string()),
            ("go.mod".to_string(), "module github.com/acme/dream // the module\n\ngo 1.22\n".to_string()),
        ],
    )
}

fn import(module: &str, kind: ImportKind) -> Import {
    Import {
        module: module.to_string(),
        line: 1,
        kind,
    }
}

fn file(path: &str) -> Target {
    Target::File(path.to_string())
}

fn external(name: &str) -> Target {
    Target::External(name.to_string())
}

/// Resolves one import of `from` and compares the targets.
fn check(from: &str, lang: Lang, module: &str, kind: ImportKind, expected: &[Target]) {
    let got = resolver().resolve(from, lang, &import(module, kind));
    assert_eq!(got, expected, "{lang} {from}: {module}");
}

use ImportKind::{IncludeLocal, IncludeSystem, Module, Relative, Use};

#[test]
fn rust() {
    check(
        "core/src/lib.rs",
        Lang::Rust,
        "store",
        Module,
        &[file("core/src/store.rs")],
    );
    check(
        "core/src/lib.rs",
        Lang::Rust,
        "net",
        Module,
        &[file("core/src/net/mod.rs")],
    );
    check(
        "core/src/store.rs",
        Lang::Rust,
        "log",
        Module,
        &[file("core/src/store/log.rs")],
    );
    check(
        "core/src/net/mod.rs",
        Lang::Rust,
        "http",
        Module,
        &[file("core/src/net/http.rs")],
    );
    check("core/src/lib.rs", Lang::Rust, "missing", Module, &[]);
    check(
        "core/src/net/http.rs",
        Lang::Rust,
        "crate::store::log::Entry",
        Use,
        &[file("core/src/store/log.rs")],
    );
    check(
        "core/src/net/http.rs",
        Lang::Rust,
        "crate::Thing",
        Use,
        &[file("core/src/lib.rs")],
    );
    check(
        "core/src/net/http.rs",
        Lang::Rust,
        "super::super::store::*",
        Use,
        &[file("core/src/store.rs")],
    );
    check(
        "core/src/store/log.rs",
        Lang::Rust,
        "super::Store",
        Use,
        &[file("core/src/store.rs")],
    );
    check(
        "core/src/net/http.rs",
        Lang::Rust,
        "super::Client",
        Use,
        &[file("core/src/net/mod.rs")],
    );
    check(
        "core/src/store.rs",
        Lang::Rust,
        "self::log::Entry",
        Use,
        &[file("core/src/store/log.rs")],
    );
    check(
        "app/src/cli.rs",
        Lang::Rust,
        "crate::cli",
        Use,
        &[file("app/src/cli.rs")],
    );
    check(
        "app/src/main.rs",
        Lang::Rust,
        "dream_core::store::Log",
        Use,
        &[file("core/src/store.rs")],
    );
    check(
        "app/src/main.rs",
        Lang::Rust,
        "cli::run",
        Use,
        &[file("app/src/cli.rs")],
    );
    check(
        "app/src/main.rs",
        Lang::Rust,
        "std::collections::HashMap",
        Use,
        &[external("std")],
    );
    check(
        "app/src/main.rs",
        Lang::Rust,
        "serde",
        Use,
        &[external("serde")],
    );
}

#[test]
fn python() {
    check(
        "pkg/sub/models.py",
        Lang::Python,
        "pkg.util",
        Use,
        &[file("pkg/util.py")],
    );
    check(
        "pkg/sub/models.py",
        Lang::Python,
        "pkg.util.helper",
        Use,
        &[file("pkg/util.py")],
    );
    check(
        "pkg/util.py",
        Lang::Python,
        "pkg.sub",
        Use,
        &[file("pkg/sub/__init__.py")],
    );
    check(
        "pkg/util.py",
        Lang::Python,
        ".sub.models.Model",
        Relative,
        &[file("pkg/sub/models.py")],
    );
    check(
        "pkg/sub/models.py",
        Lang::Python,
        "..util",
        Relative,
        &[file("pkg/util.py")],
    );
    check(
        "pkg/sub/models.py",
        Lang::Python,
        ".helper_in_init",
        Relative,
        &[file("pkg/sub/__init__.py")],
    );
    check(
        "pkg/sub/models.py",
        Lang::Python,
        "....too_far",
        Relative,
        &[],
    );
    check(
        "pkg/util.py",
        Lang::Python,
        "toolkit.cli",
        Use,
        &[file("tools/src/toolkit/cli.py")],
    );
    check(
        "pkg/util.py",
        Lang::Python,
        "os.path",
        Use,
        &[external("os")],
    );
}

#[test]
fn javascript_and_typescript() {
    check(
        "web/src/app.ts",
        Lang::TypeScript,
        "./util",
        Use,
        &[file("web/src/util.ts")],
    );
    check(
        "web/src/app.ts",
        Lang::TypeScript,
        "./util.js",
        Use,
        &[file("web/src/util.ts")],
    );
    check(
        "web/src/app.ts",
        Lang::TypeScript,
        "./components",
        Use,
        &[file("web/src/components/index.tsx")],
    );
    check(
        "web/src/app.ts",
        Lang::TypeScript,
        "../types/api",
        Use,
        &[file("web/types/api.d.ts")],
    );
    check(
        "web/src/app.ts",
        Lang::TypeScript,
        "./legacy.js",
        Use,
        &[file("web/src/legacy.js")],
    );
    check("web/src/app.ts", Lang::TypeScript, "./nothing", Use, &[]);
    check(
        "web/src/app.ts",
        Lang::TypeScript,
        "../../../../escape",
        Use,
        &[],
    );
    check(
        "web/src/legacy.js",
        Lang::JavaScript,
        "react",
        Use,
        &[external("react")],
    );
    check(
        "web/src/legacy.js",
        Lang::JavaScript,
        "@scope/pkg/deep/file",
        Use,
        &[external("@scope/pkg")],
    );
    check(
        "web/src/legacy.js",
        Lang::JavaScript,
        "lodash/fp",
        Use,
        &[external("lodash")],
    );
}

#[test]
fn go() {
    check(
        "cmd/server/main.go",
        Lang::Go,
        "github.com/acme/dream/internal/store",
        Use,
        &[
            file("internal/store/index.go"),
            file("internal/store/log.go"),
        ],
    );
    check(
        "cmd/server/main.go",
        Lang::Go,
        "github.com/acme/dream/internal/nothing",
        Use,
        &[],
    );
    check(
        "cmd/server/main.go",
        Lang::Go,
        "fmt",
        Use,
        &[external("fmt")],
    );
    check(
        "cmd/server/main.go",
        Lang::Go,
        "github.com/other/lib",
        Use,
        &[external("github.com/other/lib")],
    );
}

#[test]
fn java() {
    let app = "svc/src/main/java/com/acme/App.java";
    check(
        app,
        Lang::Java,
        "com.acme.util.Strings",
        Use,
        &[file("svc/src/main/java/com/acme/util/Strings.java")],
    );
    check(
        "other/src/main/java/com/acme/Other.java",
        Lang::Java,
        "com.acme.util.Strings",
        Use,
        &[file("other/src/main/java/com/acme/util/Strings.java")],
    );
    check(
        "svc/src/test/java/com/acme/AppTest.java",
        Lang::Java,
        "com.acme.App.main",
        Use,
        &[file("svc/src/main/java/com/acme/App.java")],
    );
    check(
        app,
        Lang::Java,
        "com.acme.util.*",
        Use,
        &[
            file("svc/src/main/java/com/acme/util/Lists.java"),
            file("svc/src/main/java/com/acme/util/Strings.java"),
        ],
    );
    check(
        app,
        Lang::Java,
        "java.util.List",
        Use,
        &[external("java.util")],
    );
    check(
        app,
        Lang::Java,
        "org.junit.Assert.assertEquals",
        Use,
        &[external("org.junit")],
    );
    check(
        app,
        Lang::Java,
        "java.util.*",
        Use,
        &[external("java.util")],
    );
}

#[test]
fn c_and_cpp() {
    check(
        "c/src/main.c",
        Lang::C,
        "list.h",
        IncludeLocal,
        &[file("c/src/list.h")],
    );
    check(
        "c/src/main.c",
        Lang::C,
        "mylib/api.h",
        IncludeLocal,
        &[file("c/include/mylib/api.h")],
    );
    check(
        "c/src/main.c",
        Lang::Cpp,
        "zlib.h",
        IncludeSystem,
        &[file("c/vendor/zlib/zlib.h")],
    );
    check(
        "c/src/main.c",
        Lang::C,
        "stdio.h",
        IncludeSystem,
        &[external("stdio.h")],
    );
    check(
        "c/src/main.c",
        Lang::C,
        "../include/mylib/api.h",
        IncludeLocal,
        &[file("c/include/mylib/api.h")],
    );
    check(
        "c/src/main.c",
        Lang::C,
        "nothere.h",
        IncludeLocal,
        &[external("nothere.h")],
    );
}

#[test]
fn manifests_are_recognised() {
    assert!(Resolver::is_manifest("Cargo.toml"));
    assert!(Resolver::is_manifest("a/b/go.mod"));
    assert!(!Resolver::is_manifest("a/Cargo.lock"));
    assert_eq!(
        cargo_package_name("[package]\nname = \"a-b\"\n"),
        Some("a-b".to_string())
    );
    assert_eq!(cargo_package_name("[dependencies]\nname = \"x\"\n"), None);
    assert_eq!(
        go_module_path("module \"example.com/m\"\n"),
        Some("example.com/m".to_string())
    );
    assert_eq!(go_module_path("modules x\n"), None);
}

fn graph(edges: &[(&str, &str)]) -> DepGraph {
    DepGraph::new(edges.iter().map(|&(from, to)| {
        let target = match to.strip_prefix("ext:") {
            Some(name) => external(name),
            None => file(to),
        };
        (from.to_string(), target)
    }))
}

#[test]
fn imports_and_importers_are_transitive_with_distances() {
    let g = graph(&[
        ("a", "b"),
        ("b", "c"),
        ("c", "d"),
        ("a", "ext:serde"),
        ("c", "ext:serde"),
        ("e", "c"),
        ("a", "b"),
    ]);
    assert_eq!(
        g.imports_of("a", 1),
        vec![(file("b"), 1), (external("serde"), 1)]
    );
    assert_eq!(
        g.imports_of("a", 2),
        vec![(file("b"), 1), (external("serde"), 1), (file("c"), 2)]
    );
    assert_eq!(
        g.imports_of("a", 10),
        vec![
            (file("b"), 1),
            (external("serde"), 1),
            (file("c"), 2),
            (file("d"), 3)
        ]
    );
    assert_eq!(g.imports_of("a", 0), vec![]);
    assert_eq!(g.imports_of("unknown", 3), vec![]);
    assert_eq!(g.importers_of("d", 1), vec![("c".to_string(), 1)]);
    assert_eq!(
        g.importers_of("d", 5),
        vec![
            ("c".to_string(), 1),
            ("b".to_string(), 2),
            ("e".to_string(), 2),
            ("a".to_string(), 3)
        ]
    );
    assert_eq!(
        g.importers_of(external("serde"), 1),
        vec![("a".to_string(), 1), ("c".to_string(), 1)]
    );
    assert_eq!(g.edges().count(), 6);
}

fn check_cycles(edges: &[(&str, &str)], expected: &[&[&str]]) {
    let want: Vec<Vec<String>> = expected
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(graph(edges).cycles(), want, "{edges:?}");
}

#[test]
fn cycles_are_strongly_connected_components_and_self_loops() {
    check_cycles(&[("a", "b"), ("b", "c")], &[]);
    check_cycles(&[("a", "b"), ("b", "a")], &[&["a", "b"]]);
    check_cycles(&[("a", "a")], &[&["a"]]);
    check_cycles(
        &[
            ("a", "b"),
            ("b", "c"),
            ("c", "a"),
            ("c", "d"),
            ("d", "e"),
            ("e", "d"),
            ("f", "f"),
            ("g", "a"),
        ],
        &[&["a", "b", "c"], &["d", "e"], &["f"]],
    );
    check_cycles(&[("a", "ext:x"), ("b", "ext:x")], &[]);
    // A cycle graph in reverse order of names still comes out sorted.
    check_cycles(&[("z", "y"), ("y", "x"), ("x", "z")], &[&["x", "y", "z"]]);
}

#[test]
fn a_long_chain_does_not_overflow_the_stack() {
    let names: Vec<String> = (0..200_000).map(|i| format!("f{i:06}")).collect();
    let mut edges: Vec<(String, Target)> = names
        .windows(2)
        .map(|w| (w[0].clone(), Target::File(w[1].clone())))
        .collect();
    edges.push((
        names[names.len() - 1].clone(),
        Target::File(names[0].clone()),
    ));
    let cycles = DepGraph::new(edges).cycles();
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0].len(), names.len());
}
