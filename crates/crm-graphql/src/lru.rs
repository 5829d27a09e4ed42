//! A small bounded map, least recently used out first: what the document, plan and statement
//! caches keep their entries in. Lookups take a short lock; eviction scans the map, which only
//! happens on an insert into a full map.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The entries with when each was last used, and the clock that counts uses.
type Entries<K, V> = (HashMap<K, (V, u64)>, u64);

pub(crate) struct Lru<K, V> {
    inner: Mutex<Entries<K, V>>,
    capacity: usize,
}

impl<K, V> std::fmt::Debug for Lru<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.inner.lock().unwrap_or_else(PoisonError::into_inner).0.len();
        f.debug_struct("Lru").field("entries", &entries).field("capacity", &self.capacity).finish()
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Lru { inner: Mutex::new((HashMap::new(), 0)), capacity }
    }

    /// Whether entries are kept at all.
    pub(crate) fn keeps(&self) -> bool {
        self.capacity > 0
    }

    /// The value of `key`, if kept (now the most recently used).
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.lock();
        inner.1 += 1;
        let now = inner.1;
        inner.0.get_mut(key).map(|(v, used)| {
            *used = now;
            v.clone()
        })
    }

    /// Keeps `value` under `key`, evicting the least recently used entry when full.
    pub(crate) fn insert(&self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.1 += 1;
        let now = inner.1;
        if inner.0.len() >= self.capacity
            && !inner.0.contains_key(&key)
            && let Some(oldest) = inner.0.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone())
        {
            inner.0.remove(&oldest);
        }
        inner.0.insert(key, (value, now));
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().0.len()
    }

    fn lock(&self) -> MutexGuard<'_, Entries<K, V>> {
        // The map stays consistent whatever panicked while it was held.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recently_used() {
        let c: Lru<String, u32> = Lru::new(2);
        c.insert("a".into(), 1);
        c.insert("b".into(), 2);
        assert_eq!(c.get("a"), Some(1));
        c.insert("c".into(), 3);
        assert_eq!(c.get("a"), Some(1), "used last, kept");
        assert_eq!(c.get("b"), None, "least recently used, gone");
        assert_eq!(c.get("c"), Some(3));
        assert_eq!(c.len(), 2);
        let none: Lru<String, u32> = Lru::new(0);
        none.insert("a".into(), 1);
        assert_eq!(none.get("a"), None);
    }
}
