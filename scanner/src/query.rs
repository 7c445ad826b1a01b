//! The search query language: `foo lang:rust path:src/*.rs repo:name sym:Foo "phrase" /regex/ case:yes`.
