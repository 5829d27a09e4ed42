//! Parsed documents, kept by their text: a client sends the same few operations over and over,
//! and parsing is the costliest step before execution (about 1 µs per byte). Only documents the
//! guard let through are kept, so a hit skips both the parse and the guard; validation still
//! runs for every request (it depends on the tenant's schema and the variables).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;

/// Documents kept by default.
pub const DEFAULT_DOCUMENT_CAPACITY: usize = 512;

/// Longest document text kept (longer ones are parsed every time).
const MAX_KEPT_LEN: usize = 64 * 1024;

/// A bounded map from document text to its parse; the least recently used goes first.
pub(crate) struct DocumentCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    docs: HashMap<Arc<str>, (Arc<ExecutableDocument>, u64)>,
    clock: u64,
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache").field("entries", &self.len()).field("capacity", &self.capacity).finish()
    }
}

impl DocumentCache {
    pub(crate) fn new(capacity: usize) -> DocumentCache {
        DocumentCache { inner: Mutex::new(Inner { docs: HashMap::new(), clock: 0 }), capacity }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent whatever panicked while it was held.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The parse of `text`, if kept.
    pub(crate) fn get(&self, text: &str) -> Option<Arc<ExecutableDocument>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        inner.docs.get_mut(text).map(|(doc, used)| {
            *used = now;
            Arc::clone(doc)
        })
    }

    /// Keeps the parse of `text` (a document the guard accepted).
    pub(crate) fn insert(&self, text: &str, doc: &ExecutableDocument) {
        if self.capacity == 0 || text.len() > MAX_KEPT_LEN {
            return;
        }
        let doc = Arc::new(doc.clone());
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        if inner.docs.len() >= self.capacity && !inner.docs.contains_key(text) {
            let oldest = inner.docs.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| Arc::clone(k));
            if let Some(k) = oldest {
                inner.docs.remove(&k);
            }
        }
        inner.docs.insert(Arc::from(text), (doc, now));
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().docs.len()
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
