//! The retained-message store of one router shard: topic name -> last retained message, and
//! topic filter -> matching retained messages (sent to a client when it subscribes).
//!
//! Owns: [`RetainedStore`], a pure data structure (no threads, channels, clocks or I/O). Must
//! not touch: whether a message should be retained or cleared (an empty retained payload deletes
//! the entry; the caller decides that and calls [`RetainedStore::remove`]), message expiry,
//! store size limits, or filter/topic validation (callers pass validated input).
//!
//! # Shape
//! A trie of topic levels: one node per level, literal children in a [`FastMap`], and the
//! message in the node where its topic name ends. An exact filter (no wildcard) is a single
//! descent; `+` visits the children of one node and continues below each; `#` visits the whole
//! subtree under its parent. The `$` rule [MQTT-4.7.2-1] is applied at the root: a leading `+`
//! or `#` skips root children whose level starts with `$`.
//!
//! Topic names are not stored a second time: the full topic handed to the callback is rebuilt
//! from the levels in one reusable buffer while walking (one allocation per wildcard query, none
//! for exact filters), which keeps memory per retained message to its levels and the value.
//! Recursion depth is bounded by the trie depth, which the level limit of topic validation
//! bounds.

use std::str::Split;

use super::hash::FastMap;
use crate::protocol::topic::has_wildcard;

/// One level of the retained trie.
///
/// Invariant: every node except the root holds a value or has children (empty nodes are pruned).
/// The root never holds a value (every topic has at least one level).
struct Node<V> {
    children: FastMap<Box<str>, Node<V>>,
    value: Option<V>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            children: FastMap::default(),
            value: None,
        }
    }
}

/// Appends one level to the topic being rebuilt and returns the length to truncate back to.
fn push_level(buf: &mut String, level: &str, at_root: bool) -> usize {
    let mark = buf.len();
    if !at_root {
        buf.push('/');
    }
    buf.push_str(level);
    mark
}

impl<V> Node<V> {
    fn is_empty(&self) -> bool {
        self.value.is_none() && self.children.is_empty()
    }

    fn count_nodes(&self) -> usize {
        1 + self.children.values().map(Node::count_nodes).sum::<usize>()
    }

    /// Removes the value at the remaining `levels`, pruning children that become empty.
    fn remove(&mut self, mut levels: Split<'_, char>) -> Option<V> {
        let Some(level) = levels.next() else {
            return self.value.take();
        };
        let child = self.children.get_mut(level)?;
        let removed = child.remove(levels);
        if child.is_empty() {
            self.children.remove(level);
            let (len, cap) = (self.children.len(), self.children.capacity());
            if cap > 32 && len < cap / 4 {
                self.children.shrink_to(len * 2);
            }
        }
        removed
    }

    /// Takes every value at or below this node for which `pred` holds, handing each to `taken`,
    /// and prunes children left empty. Returns how many were taken.
    fn take_where<P, T>(&mut self, pred: &mut P, taken: &mut T) -> usize
    where
        P: FnMut(&V) -> bool,
        T: FnMut(V),
    {
        let mut n = 0;
        if self.value.as_ref().is_some_and(&mut *pred) {
            if let Some(v) = self.value.take() {
                taken(v);
                n += 1;
            }
        }
        self.children.retain(|_, child| {
            n += child.take_where(pred, taken);
            !child.is_empty()
        });
        n
    }

    /// Calls `f` for this node's value and every value below it; `buf` holds this node's topic.
    fn visit_all<F: FnMut(&str, &V)>(&self, buf: &mut String, f: &mut F) {
        if let Some(v) = &self.value {
            f(buf, v);
        }
        for (level, child) in &self.children {
            let mark = push_level(buf, level, false);
            child.visit_all(buf, f);
            buf.truncate(mark);
        }
    }

    /// Calls `f` for every value at or below this node whose topic matches the remaining filter
    /// `levels`; `buf` holds this node's topic, `at_root` applies the `$` rule.
    fn walk<F: FnMut(&str, &V)>(
        &self,
        mut levels: Split<'_, char>,
        at_root: bool,
        buf: &mut String,
        f: &mut F,
    ) {
        match levels.next() {
            None => {
                if let Some(v) = &self.value {
                    f(buf, v);
                }
            }
            Some("#") => {
                // `#` also matches the parent level itself ("a/#" matches "a").
                if let Some(v) = &self.value {
                    f(buf, v);
                }
                for (level, child) in &self.children {
                    if at_root && level.starts_with('$') {
                        continue;
                    }
                    let mark = push_level(buf, level, at_root);
                    child.visit_all(buf, f);
                    buf.truncate(mark);
                }
            }
            Some("+") => {
                for (level, child) in &self.children {
                    if at_root && level.starts_with('$') {
                        continue;
                    }
                    let mark = push_level(buf, level, at_root);
                    child.walk(levels.clone(), false, buf, f);
                    buf.truncate(mark);
                }
            }
            Some(level) => {
                if let Some(child) = self.children.get(level) {
                    let mark = push_level(buf, level, at_root);
                    child.walk(levels, false, buf, f);
                    buf.truncate(mark);
                }
            }
        }
    }
}

/// Retained messages of one shard, keyed by topic name; `V` is the stored message (for example
/// `Arc<Message>`, so handing it to many subscribers is a reference-count increment).
///
/// Invariants: `len` is the number of stored messages; at most one message per topic name;
/// nodes that neither hold a message nor lead to one are pruned, so memory follows the live
/// retained set rather than its history.
pub struct RetainedStore<V> {
    root: Node<V>,
    len: usize,
}

impl<V> Default for RetainedStore<V> {
    fn default() -> Self {
        RetainedStore::new()
    }
}

impl<V> RetainedStore<V> {
    /// An empty store (no allocation until the first insert).
    pub fn new() -> Self {
        RetainedStore {
            root: Node::default(),
            len: 0,
        }
    }

    /// Stores `value` as the retained message of `topic` (a validated topic name), replacing and
    /// returning any previous one.
    pub fn insert(&mut self, topic: &str, value: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in topic.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let previous = node.value.replace(value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Removes and returns the retained message of `topic`, pruning nodes left empty.
    pub fn remove(&mut self, topic: &str) -> Option<V> {
        let removed = self.root.remove(topic.split('/'));
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Removes every retained message for which `pred` holds, handing each to `removed`, and
    /// prunes the nodes left empty. Walks the whole store: for an occasional sweep (e.g. of
    /// expired messages), not for hot paths. Returns how many were removed.
    pub fn remove_where(
        &mut self,
        mut pred: impl FnMut(&V) -> bool,
        mut removed: impl FnMut(V),
    ) -> usize {
        if self.len == 0 {
            return 0;
        }
        let n = self.root.take_where(&mut pred, &mut removed);
        self.len -= n;
        n
    }

    /// The retained message of exactly `topic`, if any. One descent, no allocation.
    pub fn get(&self, topic: &str) -> Option<&V> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.value.as_ref()
    }

    /// Calls `f(topic, value)` for every retained message whose topic name matches `filter` (a
    /// validated, non-shared filter), with the rules of [`crate::protocol::topic::matches`],
    /// including [MQTT-4.7.2-1] for topics starting with `$`.
    ///
    /// A filter without wildcards is a single lookup; a wildcard filter only descends into
    /// branches its levels allow (`a/+/c` never looks under `b/...`), with one buffer allocation
    /// per call to rebuild topic names. The order of calls is unspecified.
    pub fn for_each_match(&self, filter: &str, mut f: impl FnMut(&str, &V)) {
        if self.len == 0 {
            return;
        }
        if !has_wildcard(filter) {
            if let Some(v) = self.get(filter) {
                f(filter, v);
            }
            return;
        }
        let mut buf = String::with_capacity(filter.len().max(64));
        self.root.walk(filter.split('/'), true, &mut buf, &mut f);
    }

    /// Number of retained messages stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no retained message is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of trie nodes, including the root (so an empty store has 1). Walks the whole
    /// store: for tests, metrics and leak checks, not for hot paths.
    pub fn node_count(&self) -> usize {
        self.root.count_nodes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::topic::matches;
    use crate::router::test_support::{all_filters, random_topic, XorShift};
    use std::collections::HashMap;

    fn store_matches(store: &RetainedStore<u32>, filter: &str) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        store.for_each_match(filter, |t, v| out.push((t.to_string(), *v)));
        out.sort_unstable();
        out
    }

    fn brute_matches(reference: &HashMap<String, u32>, filter: &str) -> Vec<(String, u32)> {
        let mut out: Vec<(String, u32)> = reference
            .iter()
            .filter(|(t, _)| matches(filter, t))
            .map(|(t, v)| (t.clone(), *v))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn agrees_with_topic_matches_through_churn() {
        let mut rng = XorShift(0x0123_4567_89ab_cdef);
        let filters = all_filters(&["", "$SYS", "a", "b", "c", "+"]);
        let mut store = RetainedStore::new();
        let mut reference: HashMap<String, u32> = HashMap::new();
        for round in 0..4u32 {
            for i in 0..150u32 {
                let t = random_topic(&mut rng);
                let v = round * 1000 + i;
                assert_eq!(store.insert(&t, v), reference.insert(t.clone(), v));
            }
            assert_eq!(store.len(), reference.len());
            for (t, v) in &reference {
                assert_eq!(store.get(t), Some(v));
            }
            for f in &filters {
                assert_eq!(
                    store_matches(&store, f),
                    brute_matches(&reference, f),
                    "{f}"
                );
            }
            let topics: Vec<String> = reference.keys().cloned().collect();
            for t in topics {
                if rng.below(2) == 0 {
                    assert_eq!(store.remove(&t), reference.remove(&t));
                    assert_eq!(store.remove(&t), None);
                    assert_eq!(store.get(&t), None);
                }
            }
            assert_eq!(store.len(), reference.len());
        }
        let topics: Vec<String> = reference.keys().cloned().collect();
        for t in topics {
            assert_eq!(store.remove(&t), reference.remove(&t));
        }
        assert!(store.is_empty());
        assert_eq!(store.node_count(), 1);
    }

    #[test]
    fn remove_prunes_only_unused_nodes() {
        let mut store = RetainedStore::new();
        store.insert("a/b/c", 1u32);
        store.insert("a", 2);
        assert_eq!(store.node_count(), 4);
        assert_eq!(store.remove("a/b"), None);
        assert_eq!(store.node_count(), 4);
        assert_eq!(store.remove("a/b/c"), Some(1));
        // "a" still holds a message; "a/b" and "a/b/c" are gone.
        assert_eq!(store.node_count(), 2);
        assert_eq!(store.get("a"), Some(&2));
        assert_eq!(store.remove("a"), Some(2));
        assert_eq!(store.node_count(), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn remove_where_takes_matching_values_and_prunes() {
        let mut store = RetainedStore::new();
        for (i, topic) in ["a/b", "a/b/c", "a/d", "e", "$SYS/x"]
            .into_iter()
            .enumerate()
        {
            store.insert(topic, i as u32);
        }
        let mut taken = Vec::new();
        let n = store.remove_where(|v| v % 2 == 0, |v| taken.push(v));
        taken.sort_unstable();
        assert_eq!((n, taken), (3, vec![0, 2, 4]));
        assert_eq!(store.len(), 2);
        assert_eq!(store_matches(&store, "#").len(), 2, "a/b/c and e left");
        assert_eq!(store.get("a/b/c"), Some(&1));
        assert_eq!(store.get("e"), Some(&3));
        // Root, a, a/b (leads to a/b/c), a/b/c, e: a/d and $SYS pruned.
        assert_eq!(store.node_count(), 5);
        assert_eq!(store.remove_where(|_| true, |_| {}), 2);
        assert_eq!((store.len(), store.node_count()), (0, 1));
    }

    #[test]
    fn replace_and_get() {
        let mut store = RetainedStore::new();
        assert_eq!(store.insert("sport/tennis", 1u32), None);
        assert_eq!(store.insert("sport/tennis", 2), Some(1));
        assert_eq!(store.len(), 1);
        assert_eq!(store.get("sport/tennis"), Some(&2));
        assert_eq!(store.get("sport"), None);
        assert_eq!(store.get("sport/tennis/x"), None);
    }

    #[test]
    fn empty_levels_rebuild_exact_topic_names() {
        let mut store = RetainedStore::new();
        for (i, t) in ["/", "//", "/a", "a/", "a//b"].iter().enumerate() {
            store.insert(t, i as u32);
        }
        let all: Vec<String> = store_matches(&store, "#")
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(all, vec!["/", "//", "/a", "a/", "a//b"]);
        assert_eq!(
            store_matches(&store, "+/+"),
            vec![("/".into(), 0), ("/a".into(), 2), ("a/".into(), 3)]
        );
        assert_eq!(store_matches(&store, "a/+/b"), vec![("a//b".into(), 4)]);
    }

    #[test]
    fn dollar_rule_and_spec_examples() {
        let mut store = RetainedStore::new();
        store.insert("$SYS/monitor/Clients", 1u32);
        store.insert("sport/tennis/player1", 2);
        store.insert("sport/tennis/player1/ranking", 3);
        store.insert("sport", 4);
        store.insert("a/$SYS", 5);
        let keys = |f: &str| -> Vec<u32> {
            let mut v: Vec<u32> = store_matches(&store, f)
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(keys("#"), vec![2, 3, 4, 5]);
        assert_eq!(keys("+/monitor/Clients"), Vec::<u32>::new());
        assert_eq!(keys("$SYS/#"), vec![1]);
        assert_eq!(keys("$SYS/monitor/Clients"), vec![1]);
        assert_eq!(keys("sport/tennis/player1/#"), vec![2, 3]);
        assert_eq!(keys("sport/#"), vec![2, 3, 4]);
        assert_eq!(keys("sport/+"), Vec::<u32>::new());
        assert_eq!(keys("+/+"), vec![5]);
        assert_eq!(keys("+"), vec![4]);
    }

    #[test]
    fn invalid_input_does_not_panic() {
        let mut store = RetainedStore::new();
        for t in ["", "#", "+", "a/#/b", "\0"] {
            store.insert(t, 0u32);
            store.for_each_match(t, |_, _| {});
            let _ = store.get(t);
        }
        for t in ["", "#", "+", "a/#/b", "\0"] {
            assert_eq!(store.remove(t), Some(0), "{t:?}");
        }
        assert!(store.is_empty());
        assert_eq!(store.node_count(), 1);
    }
}
