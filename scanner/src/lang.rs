//! Languages: file detection, grammars and their tree-sitter queries.
