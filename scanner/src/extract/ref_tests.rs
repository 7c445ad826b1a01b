//! Tests of reference extraction: one fixture per language, checked against the references it must find
//! (and, for definitions, that a definition's own name is not a reference).

use super::*;
use crate::model::RefKind::{Call, Import, Type};

/// The references of `source` as (name, kind, line).
fn refs(lang: Lang, source: &str) -> Vec<(String, RefKind, u32)> {
    extract(lang, source)
        .expect("extraction succeeds")
        .references
        .into_iter()
        .map(|r| (r.name, r.kind, r.line))
        .collect()
}

/// Checks that every expected reference is found and that none of `absent` (name, kind) is.
fn check(lang: Lang, source: &str, expected: &[(&str, RefKind, u32)], absent: &[(&str, RefKind)]) {
    let got = refs(lang, source);
    let mut missing = Vec::new();
    for &(name, kind, line) in expected {
        if !got
            .iter()
            .any(|(n, k, l)| n == name && *k == kind && *l == line)
        {
            missing.push(format!("{name} {kind} line {line}"));
        }
    }
    assert!(
        missing.is_empty(),
        "{lang}: missing {missing:?}; found {got:?}"
    );
    for &(name, kind) in absent {
        assert!(
            !got.iter().any(|(n, k, _)| n == name && *k == kind),
            "{lang}: {name} {kind} should not be a reference; found {got:?}"
        );
    }
}

#[test]
fn rust_references() {
    let src = r#"use std::collections::{HashMap, hash_map::Entry};
use crate::store::Store as Db;
pub struct Config { map: HashMap<String, Limit> }
pub struct Limit(u32);
impl Config {
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = read_to_string(path)?;
        let cfg = parse::<Config>(&text);
        let l = Limit(3);
        let c = Config { map: HashMap::new() };
        c.validate();
        println!("{}", text);
        cfg
    }
}
cfg_rt! {
    pub fn spawn() { Runtime::current().spawn_inner(); }
}
"#;
    check(
        Lang::Rust,
        src,
        &[
            ("HashMap", Import, 1),
            ("Entry", Import, 1),
            ("Store", Import, 2),
            ("HashMap", Type, 3),
            ("Limit", Type, 3),
            ("Path", Type, 6),
            ("Error", Type, 6),
            ("read_to_string", Call, 7),
            ("parse", Call, 8),
            ("Config", Type, 8),
            ("Limit", Call, 9),
            ("Config", Call, 10),
            ("new", Call, 10),
            ("validate", Call, 11),
            ("println", Call, 12),
            ("current", Call, 17),
            ("spawn_inner", Call, 17),
        ],
        &[("load", Call), ("spawn", Call)],
    );
    // The definitions' own names are not references to them (an impl's type is the impl's name, so it is listed
    // among the definitions, not the references; an unwrapped item macro's name is blanked before parsing).
    let got = refs(Lang::Rust, src);
    assert!(
        !got.iter()
            .any(|(n, k, l)| n == "Config" && *k == Type && *l == 3),
        "struct Config's own name is not a use: {got:?}"
    );
    assert!(
        !got.iter()
            .any(|(n, k, l)| n == "Limit" && *k == Type && *l == 4),
        "struct Limit's own name is not a use: {got:?}"
    );
}

#[test]
fn python_references() {
    let src = r#"import os.path
from collections import OrderedDict as OD, deque
from .models import User

class Admin(User, base.Mixin):
    @property
    def name(self) -> Optional[str]:
        return self.lookup(os.getcwd())

@app.route("/x")
def handler(req: Request) -> None:
    make_user(User())
"#;
    check(
        Lang::Python,
        src,
        &[
            ("path", Import, 1),
            ("OrderedDict", Import, 2),
            ("deque", Import, 2),
            ("User", Import, 3),
            ("User", Type, 5),
            ("Mixin", Type, 5),
            ("property", Call, 6),
            ("Optional", Type, 7),
            ("lookup", Call, 8),
            ("getcwd", Call, 8),
            ("route", Call, 10),
            ("Request", Type, 11),
            ("make_user", Call, 12),
            ("User", Call, 12),
        ],
        &[("handler", Call), ("Admin", Type)],
    );
}

#[test]
fn javascript_references() {
    let src = r#"import React, { useState as useS, useEffect } from "react";
import * as path from "path";
const fs = require("fs");
const { join, resolve } = require("path");
class View extends Base {
  render() {
    const v = new Widget(this.opts);
    return helper(v).then(done);
  }
}
const App = () => <Layout><div/><Button label="x"/></Layout>;
"#;
    check(
        Lang::JavaScript,
        src,
        &[
            ("React", Import, 1),
            ("useState", Import, 1),
            ("useEffect", Import, 1),
            ("path", Import, 2),
            ("fs", Import, 3),
            ("join", Import, 4),
            ("resolve", Import, 4),
            ("Base", Type, 5),
            ("Widget", Call, 7),
            ("helper", Call, 8),
            ("then", Call, 8),
            ("Layout", Call, 11),
            ("Button", Call, 11),
        ],
        &[("render", Call), ("require", Import), ("div", Call)],
    );
    let tsx = "export const App = (p: Props) => <Panel title={p.t}><span/></Panel>;\n";
    check(
        Lang::Tsx,
        tsx,
        &[("Props", Type, 1), ("Panel", Call, 1)],
        &[("span", Call)],
    );
}

#[test]
fn typescript_references() {
    let src = r#"import { Observable } from "rxjs";
export interface Source<T> extends Base { next(): Observable<T>; }
export class Subject<T> extends Observable<T> implements Source<T> {
  pipe(op: Operator<T>): Subject<T> { return lift(this, op); }
}
"#;
    check(
        Lang::TypeScript,
        src,
        &[
            ("Observable", Import, 1),
            ("Base", Type, 2),
            ("Observable", Type, 2),
            ("Observable", Type, 3),
            ("Source", Type, 3),
            ("Operator", Type, 4),
            ("Subject", Type, 4),
            ("lift", Call, 4),
        ],
        &[("pipe", Call)],
    );
    let got = refs(Lang::TypeScript, src);
    assert!(
        !got.iter().any(|(n, _, l)| n == "Source" && *l == 2),
        "interface Source's own name is not a use: {got:?}"
    );
}

#[test]
fn go_references() {
    let src = r#"package main

import (
	"fmt"
	str "strings"
	"github.com/x/yaml/v2"
)

type Server struct{ cfg Config }

func (s *Server) Run(ctx context.Context) error {
	p := Point{X: 1}
	fmt.Println(str.ToUpper("x"), p)
	return s.serve(ctx)
}
"#;
    check(
        Lang::Go,
        src,
        &[
            ("fmt", Import, 4),
            ("str", Import, 5),
            ("Config", Type, 9),
            ("Server", Type, 11),
            ("Context", Type, 11),
            ("Point", Call, 12),
            ("Println", Call, 13),
            ("ToUpper", Call, 13),
            ("serve", Call, 14),
        ],
        &[("v2", Import), ("strings", Import), ("Run", Call)],
    );
}

#[test]
fn java_references() {
    let src = r#"import java.util.List;
import java.util.*;
public class Cache extends Base implements Store {
    private final List<Entry> entries = new ArrayList<>();
    public Entry get(String key) { return lookup(key).orElse(null); }
}
"#;
    check(
        Lang::Java,
        src,
        &[
            ("List", Import, 1),
            ("Base", Type, 3),
            ("Store", Type, 3),
            ("List", Type, 4),
            ("Entry", Type, 4),
            ("ArrayList", Call, 4),
            ("String", Type, 5),
            ("lookup", Call, 5),
            ("orElse", Call, 5),
        ],
        &[("get", Call), ("Cache", Type)],
    );
}

#[test]
fn c_and_cpp_references() {
    let c = r#"#include "util.h"
typedef struct node node_t;
static size_t count(node_t *n) { return helper(n) + n->ops->len(n); }
"#;
    check(
        Lang::C,
        c,
        &[("node_t", Type, 3), ("helper", Call, 3), ("len", Call, 3)],
        &[("count", Call)],
    );
    let cpp = r#"using std::string;
namespace app {
class Parser : public Base {
  Token next() { return lexer_.scan<Token>(std::move(buf_)) ; }
};
}
"#;
    check(
        Lang::Cpp,
        cpp,
        &[
            ("string", Import, 1),
            ("Base", Type, 3),
            ("Token", Type, 4),
            ("move", Call, 4),
        ],
        &[("next", Call), ("Parser", Type)],
    );
}
