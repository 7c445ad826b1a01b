//! The Tantivy code index: schema, tokenizers, writing and reading.
