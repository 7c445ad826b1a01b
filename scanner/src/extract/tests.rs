//! Tests of extraction: one fixture per language, checked against its expected definitions and imports.

use super::*;
use crate::model::ImportKind::{IncludeLocal, IncludeSystem, Relative, Use};
use crate::model::SymbolKind::*;

/// One expected definition: name, kind, first line, container.
type Def<'a> = (&'a str, SymbolKind, u32, Option<&'a str>);
/// One expected import: module, line, kind.
type Imp<'a> = (&'a str, u32, ImportKind);

/// Extracts `source` and compares the definitions (name, kind, line, container) and imports exactly.
fn check(lang: Lang, source: &str, defs: &[Def<'_>], imports: &[Imp<'_>]) {
    let facts = extract(lang, source).expect("extraction succeeds");
    let got: Vec<(String, SymbolKind, u32, Option<String>)> = facts
        .definitions
        .iter()
        .map(|d| (d.name.clone(), d.kind, d.line, d.container.clone()))
        .collect();
    let want: Vec<(String, SymbolKind, u32, Option<String>)> = defs
        .iter()
        .map(|&(n, k, l, c)| (n.to_string(), k, l, c.map(str::to_string)))
        .collect();
    assert_eq!(got, want, "{lang} definitions");
    let got: Vec<(String, u32, ImportKind)> = facts
        .imports
        .iter()
        .map(|i| (i.module.clone(), i.line, i.kind))
        .collect();
    let want: Vec<(String, u32, ImportKind)> = imports
        .iter()
        .map(|&(m, l, k)| (m.to_string(), l, k))
        .collect();
    assert_eq!(got, want, "{lang} imports");
}

/// Finds one definition by name and checks a property of it.
fn definition(lang: Lang, source: &str, name: &str) -> Definition {
    extract(lang, source)
        .expect("extraction succeeds")
        .definitions
        .into_iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no definition named {name}"))
}

const RUST: &str = r#"use std::collections::{HashMap, hash_map::Entry as E};
use crate::store::{self, log::*};
use super::model::Lang;
extern crate serde;
mod parser;
pub mod inline { pub fn helper() {} }

/// A parser.
/// Two lines of doc.
#[derive(Debug)]
pub struct Parser { pos: usize }

pub enum Token { Word(String), End }

union Bits { i: u32, f: f32 }

type Result<T> = std::result::Result<T, Error>;
const LIMIT: usize = 10;
static NAME: &str = "x";

pub trait Parse { fn parse(&self) -> u32; }

impl Parser {
    pub fn new() -> Self { Parser { pos: 0 } }
}

impl<T> Parse for Vec<T> {
    fn parse(&self) -> u32 { 0 }
}

macro_rules! twice { ($e:expr) => { $e; $e }; }

fn main() {
    fn nested() {}
}
"#;

#[test]
fn rust() {
    check(
        Lang::Rust,
        RUST,
        &[
            ("inline", SymbolKind::Module, 6, None),
            ("helper", Function, 6, Some("inline")),
            ("Parser", Struct, 11, None),
            ("pos", Field, 11, Some("Parser")),
            ("Token", Enum, 13, None),
            ("Word", EnumVariant, 13, Some("Token")),
            ("End", EnumVariant, 13, Some("Token")),
            ("Bits", Union, 15, None),
            ("i", Field, 15, Some("Bits")),
            ("f", Field, 15, Some("Bits")),
            ("Result", TypeAlias, 17, None),
            ("LIMIT", Constant, 18, None),
            ("NAME", Constant, 19, None),
            ("Parse", Interface, 21, None),
            ("parse", Method, 21, Some("Parse")),
            ("Parser", Impl, 23, None),
            ("new", Method, 24, Some("Parser")),
            ("Vec", Impl, 27, None),
            ("parse", Method, 28, Some("Vec")),
            ("twice", Macro, 31, None),
            ("main", Function, 33, None),
            ("nested", Function, 34, None),
        ],
        &[
            ("std::collections::HashMap", 1, Use),
            ("std::collections::hash_map::Entry", 1, Use),
            ("crate::store", 2, Use),
            ("crate::store::log::*", 2, Use),
            ("super::model::Lang", 3, Use),
            ("serde", 4, Use),
            ("parser", 5, ImportKind::Module),
        ],
    );
}

#[test]
fn rust_details() {
    let parser = definition(Lang::Rust, RUST, "Parser");
    assert_eq!(parser.doc.as_deref(), Some("A parser.\nTwo lines of doc."));
    assert_eq!(parser.signature, "pub struct Parser { pos: usize }");
    assert_eq!((parser.line, parser.end_line), (11, 11));
    let main = definition(Lang::Rust, RUST, "main");
    assert_eq!((main.line, main.end_line), (33, 35));
    assert_eq!(main.doc, None);
}

const PYTHON: &str = r#"import os.path, sys as system
from . import util, helpers as h
from ..core.models import Model
from typing import *
from pkg.sub import name

LIMIT = 3

class Store(Base):
    """Keeps things.

    Really.
    """

    @property
    def size(self):
        return 1

    def put(self, x):
        def inner():
            pass

def free():
    '''Free function.'''
square = lambda x: x * x
"#;

#[test]
fn python() {
    check(
        Lang::Python,
        PYTHON,
        &[
            ("LIMIT", Variable, 7, None),
            ("Store", Class, 9, None),
            ("size", Method, 16, Some("Store")),
            ("put", Method, 19, Some("Store")),
            ("inner", Function, 20, Some("Store")),
            ("free", Function, 23, None),
            ("square", Function, 25, None),
        ],
        &[
            ("os.path", 1, Use),
            ("sys", 1, Use),
            (".util", 2, Relative),
            (".helpers", 2, Relative),
            ("..core.models.Model", 3, Relative),
            ("typing", 4, Use),
            ("pkg.sub.name", 5, Use),
        ],
    );
    let store = definition(Lang::Python, PYTHON, "Store");
    assert_eq!(store.doc.as_deref(), Some("Keeps things.\n\nReally."));
    assert_eq!(
        definition(Lang::Python, PYTHON, "free").doc.as_deref(),
        Some("Free function.")
    );
}

const JAVASCRIPT: &str = r#"import React, { useState } from "react";
import "./side-effect.js";
export { a } from './a';
export * from "./b";
const fs = require("fs");
const LIMIT = 10;

/**
 * Adds numbers.
 */
export function add(a, b) { return a + b; }

function* gen() {}

export const arrow = (x) => x * 2;

class Widget extends Base {
  count = 0;
  render() { return import("./lazy"); }
}

module.exports.helper = function () {};
const obj = { start: function () {}, stop() {} };
"#;

#[test]
fn javascript() {
    check(
        Lang::JavaScript,
        JAVASCRIPT,
        &[
            ("fs", Constant, 5, None),
            ("LIMIT", Constant, 6, None),
            ("add", Function, 11, None),
            ("gen", Function, 13, None),
            ("arrow", Function, 15, None),
            ("Widget", Class, 17, None),
            ("count", Field, 18, Some("Widget")),
            ("render", Method, 19, Some("Widget")),
            ("helper", Function, 22, None),
            ("obj", Constant, 23, None),
            ("start", Method, 23, None),
            ("stop", Method, 23, None),
        ],
        &[
            ("react", 1, Use),
            ("./side-effect.js", 2, Use),
            ("./a", 3, Use),
            ("./b", 4, Use),
            ("fs", 5, Use),
            ("./lazy", 19, Use),
        ],
    );
    assert_eq!(
        definition(Lang::JavaScript, JAVASCRIPT, "add")
            .doc
            .as_deref(),
        Some("Adds numbers.")
    );
}

const TYPESCRIPT: &str = r#"import { Foo } from "../foo";
import type { Bar } from "./bar";

export interface Shape {
  area(): number;
  name: string;
}

export type Id = string | number;

export enum Color { Red, Green = 2 }

namespace Geometry {
  export function unit(): Shape { return null as any; }
}

declare function external(x: number): void;

@Component({})
export abstract class Base<T> implements Shape {
  private label: string = "";
  abstract area(): number;
  get name(): string { return this.label; }
}
"#;

#[test]
fn typescript() {
    check(
        Lang::TypeScript,
        TYPESCRIPT,
        &[
            ("Shape", Interface, 4, None),
            ("area", Method, 5, Some("Shape")),
            ("name", Field, 6, Some("Shape")),
            ("Id", TypeAlias, 9, None),
            ("Color", Enum, 11, None),
            ("Red", EnumVariant, 11, Some("Color")),
            ("Green", EnumVariant, 11, Some("Color")),
            ("Geometry", Namespace, 13, None),
            ("unit", Function, 14, Some("Geometry")),
            ("external", Function, 17, None),
            ("Base", Class, 20, None),
            ("label", Field, 21, Some("Base")),
            ("area", Method, 22, Some("Base")),
            ("name", Method, 23, Some("Base")),
        ],
        &[("../foo", 1, Use), ("./bar", 2, Use)],
    );
}

const TSX: &str = r#"import * as React from "react";
export const App = (props: Props) => <div>{props.title}</div>;
export function Page(): JSX.Element { return <App title="x" />; }
interface Props { title: string }
"#;

#[test]
fn tsx() {
    check(
        Lang::Tsx,
        TSX,
        &[
            ("App", Function, 2, None),
            ("Page", Function, 3, None),
            ("Props", Interface, 4, None),
            ("title", Field, 4, Some("Props")),
        ],
        &[("react", 1, Use)],
    );
}

/// JavaScript as CommonJS libraries, their tests and ES modules write it. One fixture per pattern; each runs
/// as JavaScript and, where TypeScript has the same syntax, as TypeScript too.
fn check_js_and_ts(source: &str, defs: &[Def<'_>]) {
    check(Lang::JavaScript, source, defs, &[]);
    check(Lang::TypeScript, source, defs, &[]);
}

#[test]
fn named_function_expressions_passed_as_arguments_are_definitions() {
    check_js_and_ts(
        r#"defineGetter(req, 'host', function host() {
  return this.get('Host');
});
stream.on('end', function onend() {});
co(function* run() {});
setTimeout(function () {}, 10);
list.map(() => 1);
"#,
        &[
            ("host", Function, 1, None),
            ("onend", Function, 4, None),
            ("run", Function, 5, None),
        ],
    );
}

#[test]
fn function_declarations_inside_callbacks_are_definitions() {
    check_js_and_ts(
        r#"describe('accepts', function () {
  function accept(req) {
    return true;
  }
  it('works', () => {
    function inner() {}
  });
});
"#,
        &[("accept", Function, 2, None), ("inner", Function, 6, None)],
    );
}

#[test]
fn returned_named_function_expressions_are_definitions() {
    check_js_and_ts(
        r#"function query(options) {
  return function query(req, res, next) {
    next();
  };
}
function factory() {
  return function textParser(req, res, next) {};
}
"#,
        &[
            ("query", Function, 1, None),
            ("query", Function, 2, None),
            ("factory", Function, 6, None),
            ("textParser", Function, 7, None),
        ],
    );
}

#[test]
fn commonjs_exports_are_definitions_under_each_name() {
    check_js_and_ts(
        r#"exports.parse = function () {};
exports.format = function format(obj) {};
module.exports = function createApplication() {};
module.exports.helper = () => {};
var compile = function compileETag(value) {};
var noop = function noop() {};
module.exports = class Pluralizer { add(word) {} };
exports.Parser = class Parser {};
"#,
        &[
            ("parse", Function, 1, None),
            ("format", Function, 2, None),
            ("exports", Function, 3, None),
            ("createApplication", Function, 3, None),
            ("helper", Function, 4, None),
            ("compile", Function, 5, None),
            ("compileETag", Function, 5, None),
            ("noop", Function, 6, None),
            ("exports", Class, 7, None),
            ("Pluralizer", Class, 7, None),
            ("add", Method, 7, Some("Pluralizer")),
            ("Parser", Class, 8, None),
        ],
    );
}

#[test]
fn prototype_assignments_are_methods_of_the_constructor() {
    // ctags calls `View` a class because the file assigns `View.prototype`; it stays a function here (its kind
    // is what it is written as), and the assignments are methods with `View` as their container.
    check_js_and_ts(
        r#"function View(name, options) {
  this.name = name;
}

View.prototype.lookup = function lookup(name) {
  return name;
};
View.prototype.render = function (options, callback) {};
View.prototype.charset =
View.prototype.charsets = function (charsets) {};
View.prototype.preferredType = View.prototype.type;
View.prototype.etag = deprecate.function(function etag(val) {});
View.prototype.bomAware = true;
"#,
        &[
            ("View", Function, 1, None),
            ("lookup", Method, 5, Some("View")),
            ("render", Method, 8, Some("View")),
            ("charset", Method, 9, Some("View")),
            ("charsets", Method, 10, Some("View")),
            ("preferredType", Method, 11, Some("View")),
            ("etag", Method, 12, Some("View")),
            ("bomAware", Field, 13, Some("View")),
        ],
    );
}

#[test]
fn object_literal_members_with_string_keys_are_methods() {
    check_js_and_ts(
        r#"const channel = {
  'delete': function (key) {},
  get: function get() {},
  has: function () {},
};
class Pass {
  get ['async']() { return true; }
}
"#,
        &[
            ("channel", Constant, 1, None),
            ("delete", Method, 2, None),
            ("get", Method, 3, None),
            ("has", Method, 4, None),
            ("Pass", Class, 6, None),
            ("async", Method, 7, Some("Pass")),
        ],
    );
}

#[test]
fn typescript_named_function_expressions_and_prototypes_keep_their_types() {
    check(
        Lang::TypeScript,
        r#"defineGetter(req, 'host', function host(this: Request): string {
  return '';
});
export = function createApplication(): Application {};
Route.prototype.dispatch = function dispatch(this: Route, req: Req): void {};
interface ErrorCtor {
  new (message: string): AjaxError;
  array: <T>(values?: T[]) => T[];
  size: number;
}
"#,
        &[
            ("host", Function, 1, None),
            ("createApplication", Function, 4, None),
            ("dispatch", Method, 5, Some("Route")),
            ("ErrorCtor", Interface, 6, None),
            ("new", Method, 7, Some("ErrorCtor")),
            ("array", Method, 8, Some("ErrorCtor")),
            ("size", Field, 9, Some("ErrorCtor")),
        ],
        &[],
    );
}

const GO: &str = r#"package store

import "fmt"

import (
	"os"
	log "github.com/x/log"
)

const Limit = 10

var global = 1

// Store keeps things.
// It is safe for one goroutine.
type Store struct {
	items []string
}

type Reader interface {
	Read(p []byte) (int, error)
}

type ID = string

type Count int

// New makes a Store.
func New() *Store { return &Store{} }

func (s *Store) Put(x string) { s.items = append(s.items, x) }

func (s Store) Len() int { return len(s.items) }
"#;

#[test]
fn go() {
    check(
        Lang::Go,
        GO,
        &[
            ("Limit", Constant, 10, None),
            ("global", Variable, 12, None),
            ("Store", Struct, 16, None),
            ("items", Field, 17, Some("Store")),
            ("Reader", Interface, 20, None),
            ("Read", Method, 21, Some("Reader")),
            ("ID", TypeAlias, 24, None),
            ("Count", TypeAlias, 26, None),
            ("New", Function, 29, None),
            ("Put", Method, 31, Some("Store")),
            ("Len", Method, 33, Some("Store")),
        ],
        &[
            ("fmt", 3, Use),
            ("os", 6, Use),
            ("github.com/x/log", 7, Use),
        ],
    );
    assert_eq!(
        definition(Lang::Go, GO, "Store").doc.as_deref(),
        Some("Store keeps things.\nIt is safe for one goroutine.")
    );
    assert_eq!(
        definition(Lang::Go, GO, "New").doc.as_deref(),
        Some("New makes a Store.")
    );
}

const JAVA: &str = r#"package com.example;

import java.util.List;
import java.util.*;
import static org.junit.Assert.assertEquals;

/**
 * A service.
 */
@Service
public class Service implements Runnable {
    private final int count = 0;
    static final String A = "a", B = "b";

    public Service() {}

    @Override
    public void run() {}

    enum Mode { FAST, SLOW }

    interface Listener { void on(); }
}

record Point(int x, int y) {}

@interface Marker { String value(); }
"#;

#[test]
fn java() {
    check(
        Lang::Java,
        JAVA,
        &[
            ("Service", Class, 11, None),
            ("count", Field, 12, Some("Service")),
            ("A", Field, 13, Some("Service")),
            ("B", Field, 13, Some("Service")),
            ("Service", Method, 15, Some("Service")),
            ("run", Method, 18, Some("Service")),
            ("Mode", Enum, 20, Some("Service")),
            ("FAST", EnumVariant, 20, Some("Mode")),
            ("SLOW", EnumVariant, 20, Some("Mode")),
            ("Listener", Interface, 22, Some("Service")),
            ("on", Method, 22, Some("Listener")),
            ("Point", Class, 25, None),
            ("Marker", Interface, 27, None),
            ("value", Method, 27, Some("Marker")),
        ],
        &[
            ("java.util.List", 3, Use),
            ("java.util.*", 4, Use),
            ("org.junit.Assert.assertEquals", 5, Use),
        ],
    );
    let service = definition(Lang::Java, JAVA, "Service");
    assert_eq!(service.doc.as_deref(), Some("A service."));
    assert_eq!(
        service.signature,
        "public class Service implements Runnable {"
    );
    let run = definition(Lang::Java, JAVA, "run");
    assert_eq!(run.signature, "public void run() {}");
}

const C: &str = r#"#include <stdio.h>
#include "util/list.h"
#define MAX 10
#define SQUARE(x) ((x) * (x))

int prototype(int a);

struct point { int x; int *y; };
union value { int i; float f; };
enum color { RED, GREEN };
typedef struct { int w; } size_t2;
typedef int (*callback)(void *);

/** Adds one. */
static int add_one(int a) { return a + 1; }

char **names(void) { return 0; }
"#;

#[test]
fn c() {
    check(
        Lang::C,
        C,
        &[
            ("MAX", Macro, 3, None),
            ("SQUARE", Macro, 4, None),
            ("point", Struct, 8, None),
            ("x", Field, 8, Some("point")),
            ("y", Field, 8, Some("point")),
            ("value", Union, 9, None),
            ("i", Field, 9, Some("value")),
            ("f", Field, 9, Some("value")),
            ("color", Enum, 10, None),
            ("RED", EnumVariant, 10, Some("color")),
            ("GREEN", EnumVariant, 10, Some("color")),
            ("size_t2", TypeAlias, 11, None),
            ("w", Field, 11, None),
            ("callback", TypeAlias, 12, None),
            ("add_one", Function, 15, None),
            ("names", Function, 17, None),
        ],
        &[
            ("stdio.h", 1, IncludeSystem),
            ("util/list.h", 2, IncludeLocal),
        ],
    );
    assert_eq!(
        definition(Lang::C, C, "add_one").doc.as_deref(),
        Some("Adds one.")
    );
}

const CPP: &str = r#"#include <vector>
#include "parser.hpp"

namespace dream {

class Parser : public Base {
public:
    Parser();
    int parse(const char *text);
    int inline_len() const { return len_; }
private:
    int len_;
};

struct Point { int x; };

int Parser::parse(const char *text) { return 0; }

Parser::Parser() {}

template <typename T>
T twice(T x) { return x + x; }

using Names = std::vector<std::string>;

}  // namespace dream
"#;

#[test]
fn cpp() {
    check(
        Lang::Cpp,
        CPP,
        &[
            ("dream", Namespace, 4, None),
            ("Parser", Class, 6, Some("dream")),
            ("inline_len", Method, 10, Some("Parser")),
            ("len_", Field, 12, Some("Parser")),
            ("Point", Struct, 15, Some("dream")),
            ("x", Field, 15, Some("Point")),
            ("parse", Method, 17, Some("Parser")),
            ("Parser", Method, 19, Some("Parser")),
            ("twice", Function, 22, Some("dream")),
            ("Names", TypeAlias, 24, Some("dream")),
        ],
        &[
            ("vector", 1, IncludeSystem),
            ("parser.hpp", 2, IncludeLocal),
        ],
    );
}

#[test]
fn signatures_are_capped_on_a_char_boundary() {
    let long_name = "é".repeat(300);
    let source = format!("fn {long_name}() {{}}\n");
    let def = definition(Lang::Rust, &source, &long_name);
    assert_eq!(def.signature.chars().count(), MAX_SIGNATURE_CHARS);
}

#[test]
fn docs_are_capped_on_a_char_boundary() {
    let source = format!("/// {}\nfn f() {{}}\n", "ü".repeat(2000));
    let doc = definition(Lang::Rust, &source, "f")
        .doc
        .expect("a doc comment");
    assert!(
        doc.len() <= MAX_DOC_BYTES && doc.len() > MAX_DOC_BYTES - 4,
        "{}",
        doc.len()
    );
}

#[test]
fn plain_comments_are_not_docs() {
    let source = "// just a note\nfn f() {}\n/* block */\nfn g() {}\n";
    assert_eq!(definition(Lang::Rust, source, "f").doc, None);
    assert_eq!(definition(Lang::Rust, source, "g").doc, None);
    let java = "class A {\n  /* not doc */\n  void m() {}\n}\n";
    assert_eq!(definition(Lang::Java, java, "m").doc, None);
}

#[test]
fn broken_and_hostile_input_never_panics() {
    let inputs = [
        "",
        "\0\0\0",
        "fn (",
        "}}}}{{{{",
        "class { def ( import from",
        "#include <",
        "import (\n\t\"",
        "impl for {}",
        "/** unterminated",
        "\u{feff}fn ok() {}",
        "é\n/// ü\nfn x() {}",
    ];
    for lang in Lang::ALL {
        for input in inputs {
            extract(lang, input).unwrap_or_else(|e| panic!("{lang} on {input:?}: {e}"));
        }
        let deep = "(".repeat(5000);
        extract(lang, &deep).unwrap_or_else(|e| panic!("{lang} on deep nesting: {e}"));
    }
}

#[test]
fn an_extractor_switches_languages() {
    let mut extractor = Extractor::new();
    let rust = extractor.extract(Lang::Rust, "fn a() {}").expect("rust");
    let python = extractor
        .extract(Lang::Python, "def b(): pass")
        .expect("python");
    let rust_again = extractor
        .extract(Lang::Rust, "fn c() {}")
        .expect("rust again");
    assert_eq!(rust.definitions[0].name, "a");
    assert_eq!(python.definitions[0].name, "b");
    assert_eq!(rust_again.definitions[0].name, "c");
}

fn check_split(raw: &str, name: &str, qualifier: Option<&str>) {
    assert_eq!(
        split_qualified(raw),
        (name.to_string(), qualifier.map(str::to_string)),
        "{raw}"
    );
}

#[test]
fn qualified_names_split_at_the_last_scope() {
    check_split("bar", "bar", None);
    check_split("Foo::bar", "bar", Some("Foo"));
    check_split("a::B<std::string>::c", "c", Some("a::B<std::string>"));
    check_split("Foo::~Foo", "~Foo", Some("Foo"));
    check_split("Foo::operator==", "operator==", Some("Foo"));
    check_split("Vec<T>", "Vec", None);
    check_split("::global", "global", None);
    check_split("\"quoted\"", "quoted", None);
}

fn check_blanked(input: &str, expected: Option<&str>) {
    let got = blank_macros(input);
    assert_eq!(got.as_deref(), expected, "{input:?}");
    if let Some(got) = got {
        assert_eq!(got.len(), input.len(), "offsets are kept");
    }
}

#[test]
fn implementation_macros_are_blanked_before_parsing_c() {
    check_blanked("int f(void);\n", None);
    check_blanked(
        "__BEGIN_DECLS\nstruct a { int x; };\n",
        Some("             \nstruct a { int x; };\n"),
    );
    check_blanked("DECLARE_ASN1(ASRange)\n", Some("                     \n"));
    check_blanked("FOO(x);\n", None);
    check_blanked("  INDENTED\n", None);
    check_blanked(
        "bool empty() const _GLIBCXX_NOEXCEPT {",
        Some("bool empty() const                   {"),
    );
    check_blanked(
        "namespace std _GLIBCXX_VISIBILITY(default)\n",
        Some("namespace std                             \n"),
    );
    check_blanked(
        "extern int f (int) __THROW __wur;\n",
        Some("extern int f (int)         __wur;\n"),
    );
    check_blanked("log(__FILE__, __LINE__);\n", None);
    check_blanked(
        "#define _GLIBCXX_NOEXCEPT noexcept\n#if __BEGIN\\\n _X_Y\n#endif\n",
        None,
    );
    check_blanked("x = _Y;\n", None);
}

#[test]
fn definitions_behind_macros_are_found() {
    let source = "__BEGIN_DECLS\n\nstruct mntent\n  {\n    char *dir;\n  };\n\nDECLARE_FUNCS(Range)\n\ntypedef struct range_st {\n    int min;\n} Range;\n\nsize_t size() const _GLIBCXX_NOEXCEPT { return 0; }\n";
    let facts = extract(Lang::Cpp, source).expect("extraction succeeds");
    let names: Vec<(&str, u32)> = facts
        .definitions
        .iter()
        .map(|d| (d.name.as_str(), d.line))
        .collect();
    assert_eq!(
        names,
        vec![
            ("mntent", 3),
            ("dir", 5),
            ("Range", 10),
            ("range_st", 10),
            ("min", 11),
            ("size", 14)
        ]
    );
    let size = facts
        .definitions
        .iter()
        .find(|d| d.name == "size")
        .expect("size is found");
    assert_eq!(
        size.signature,
        "size_t size() const _GLIBCXX_NOEXCEPT { return 0; }"
    );
}

const TOKIO_STYLE: &str = r#"use crate::runtime::Handle;

cfg_rt! {
    /// Runs the closure on a thread where blocking is fine.
    pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R,
    {
        crate::runtime::spawn_blocking(f)
    }

    cfg_unstable! {
        pub struct Builder { name: String }
    }
}

impl Handle {
    cfg_metrics! {
        pub fn metrics(&self) -> RuntimeMetrics { RuntimeMetrics::new(self) }
    }
}

macro_rules! cfg_rt {
    ($($item:item)*) => { $( #[cfg(feature = "rt")] $item )* }
}

thread_local! {
    static CURRENT: RefCell<Option<Handle>> = RefCell::new(None);
}

fn body() {
    inner! { fn not_an_item_here() {} }
}
"#;

#[test]
fn definitions_inside_item_position_macros_are_found_with_their_lines() {
    let facts = extract(Lang::Rust, TOKIO_STYLE).expect("extraction succeeds");
    let got: Vec<(&str, SymbolKind, u32, Option<&str>, bool)> = facts
        .definitions
        .iter()
        .map(|d| {
            (
                d.name.as_str(),
                d.kind,
                d.line,
                d.container.as_deref(),
                d.in_macro,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("spawn_blocking", Function, 5, None, true),
            ("Builder", Struct, 13, None, true),
            ("name", Field, 13, Some("Builder"), true),
            ("Handle", Impl, 17, None, false),
            ("metrics", Method, 19, Some("Handle"), true),
            ("cfg_rt", Macro, 23, None, false),
            ("CURRENT", Constant, 28, None, true),
            ("body", Function, 31, None, false),
        ],
        "{:#?}",
        facts.definitions
    );
    let spawn = definition(Lang::Rust, TOKIO_STYLE, "spawn_blocking");
    assert_eq!(
        spawn.signature,
        "pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>"
    );
    assert_eq!(
        spawn.doc.as_deref(),
        Some("Runs the closure on a thread where blocking is fine.")
    );
    assert_eq!(spawn.end_line, 10);
    // Imports are still read from the file as written.
    assert_eq!(facts.imports.len(), 1);
}
