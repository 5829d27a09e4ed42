//! Parsed documents, kept by their text: a client sends the same few operations over and over,
//! and parsing is the costliest step before execution (about 1 µs per byte). Only documents the
//! guard let through are kept, so a hit skips both the parse and the guard; validation still
//! runs for every request (it depends on the tenant's schema and the variables).

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;

use crate::lru::Lru;

/// Documents kept by default.
pub const DEFAULT_DOCUMENT_CAPACITY: usize = 512;

/// Longest document text kept (longer ones are parsed every time).
const MAX_KEPT_LEN: usize = 64 * 1024;

/// A bounded map from document text to its parse; the least recently used goes first.
#[derive(Debug)]
pub(crate) struct DocumentCache(Lru<Arc<str>, Arc<ExecutableDocument>>);

impl DocumentCache {
    pub(crate) fn new(capacity: usize) -> DocumentCache {
        DocumentCache(Lru::new(capacity))
    }

    /// The parse of `text`, if kept.
    pub(crate) fn get(&self, text: &str) -> Option<Arc<ExecutableDocument>> {
        self.0.get(text)
    }

    /// Keeps the parse of `text` (a document the guard accepted).
    pub(crate) fn insert(&self, text: &str, doc: &ExecutableDocument) {
        if !self.0.keeps() || text.len() > MAX_KEPT_LEN {
            return;
        }
        self.0.insert(Arc::from(text), Arc::new(doc.clone()));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(q).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn keeps_the_most_recently_used() {
        let c = DocumentCache::new(2);
        c.insert("{ a }", &parse("{ a }"));
        c.insert("{ b }", &parse("{ b }"));
        assert!(c.get("{ a }").is_some());
        c.insert("{ c }", &parse("{ c }"));
        assert!(c.get("{ a }").is_some(), "used last, kept");
        assert!(c.get("{ b }").is_none(), "least recently used, gone");
        assert!(c.get("{ c }").is_some());
        assert_eq!(c.len(), 2);
    }
}
