//! The subscription trie of one router shard: topic filter -> subscribers, and topic -> matching
//! subscriptions.
//!
//! Owns: [`SubscriptionTrie`], a pure data structure (no threads, no channels, no I/O, no
//! session rules). Must not touch: filter validation (callers pass filters already checked by
//! [`crate::protocol::topic::validate_topic_filter`]), shared subscriptions (`$share/...`, not
//! stored by this API yet), retained messages (see [`super::retained`]), or delivery decisions
//! such as QoS downgrade or de-duplicating overlapping subscriptions of one client.
//!
//! # Shape
//! One node per filter level. A node has literal children in a [`FastMap`] keyed by the level
//! text, a separate child for `+`, and two subscriber lists: `exact` for filters that end at
//! this node and `multi` for filters that end with `/#` below this node (or `#` at the root).
//! Matching a topic walks its levels once, following at each node the literal child and the `+`
//! child, and collecting every `multi` list on the way (that is how `a/#` also matches `a`).
//! Nothing is allocated while matching; recursion depth is bounded by the trie depth, which
//! the level limit of filter validation bounds.
//!
//! # Large fan-out
//! Subscribers of one filter live in a `Vec<(K, V)>` so delivery iterates contiguous memory. A
//! list that grows past `INDEX_AT` (32) entries also gets a `K -> position` index, so replacing and
//! removing one subscriber of a 10,000-subscriber filter is O(1) instead of a linear scan (which
//! would make churn of the whole list quadratic). Removal uses `swap_remove`, so the order of
//! subscribers within a list is not stable; MQTT does not specify one.
//!
//! # Extending for shared subscriptions
//! `Node` is private and built through `Node::default`; a later change can add a field for
//! share groups next to `exact`/`multi` and extend `Node::is_empty` so pruning keeps working.

use std::hash::Hash;
use std::str::Split;

use super::hash::FastMap;

/// A subscriber list gets a position index once it holds more than this many entries.
const INDEX_AT: usize = 32;
/// The index is dropped again (to save memory) when the list shrinks below this.
const UNINDEX_AT: usize = 16;

/// Subscribers of one filter: a dense list plus, for long lists, a key -> position index.
///
/// Invariants: keys in `list` are unique; when `index` is `Some`, it maps every key of `list` to
/// its position and nothing else.
struct Subscribers<K, V> {
    list: Vec<(K, V)>,
    index: Option<Box<FastMap<K, usize>>>,
}

impl<K: Copy + Eq + Hash, V> Subscribers<K, V> {
    fn new() -> Self {
        Subscribers {
            list: Vec::new(),
            index: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn position(&self, key: K) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(&key).copied(),
            None => self.list.iter().position(|(k, _)| *k == key),
        }
    }

    /// Adds `key`, or replaces its value and returns the old one.
    fn upsert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(slot) = self.position(key).and_then(|i| self.list.get_mut(i)) {
            return Some(std::mem::replace(&mut slot.1, value));
        }
        self.list.push((key, value));
        let pos = self.list.len() - 1;
        match &mut self.index {
            Some(index) => {
                index.insert(key, pos);
            }
            None if self.list.len() > INDEX_AT => self.build_index(),
            None => {}
        }
        None
    }

    fn build_index(&mut self) {
        let mut index = FastMap::default();
        index.reserve(self.list.len());
        for (pos, (k, _)) in self.list.iter().enumerate() {
            index.insert(*k, pos);
        }
        self.index = Some(Box::new(index));
    }

    /// Removes `key` and returns its value; O(1) with the index, O(len) without.
    fn remove(&mut self, key: K) -> Option<V> {
        let pos = self.position(key)?;
        if pos >= self.list.len() {
            return None;
        }
        let (_, value) = self.list.swap_remove(pos);
        if let Some(index) = &mut self.index {
            index.remove(&key);
            if let Some((moved, _)) = self.list.get(pos) {
                index.insert(*moved, pos);
            }
        }
        if self.list.len() < UNINDEX_AT {
            self.index = None;
        }
        let (len, cap) = (self.list.len(), self.list.capacity());
        if cap > 64 && len < cap / 4 {
            self.list.shrink_to(len * 2);
        }
        Some(value)
    }

    fn iter(&self) -> std::slice::Iter<'_, (K, V)> {
        self.list.iter()
    }
}

/// One trie node; see the module documentation for the shape.
struct Node<K, V> {
    /// Literal next levels (including the empty level `""`).
    children: FastMap<Box<str>, Node<K, V>>,
    /// The `+` next level.
    plus: Option<Box<Node<K, V>>>,
    /// Subscriptions whose filter ends exactly at this node.
    exact: Subscribers<K, V>,
    /// Subscriptions whose filter is this node's path followed by `#`.
    multi: Subscribers<K, V>,
}

impl<K: Copy + Eq + Hash, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: FastMap::default(),
            plus: None,
            exact: Subscribers::new(),
            multi: Subscribers::new(),
        }
    }
}

impl<K: Copy + Eq + Hash, V> Node<K, V> {
    /// A node that holds nothing and leads nowhere; such nodes are pruned (except the root).
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.exact.is_empty()
            && self.multi.is_empty()
    }

    fn count_nodes(&self) -> usize {
        let below: usize = self.children.values().map(Node::count_nodes).sum();
        1 + below + self.plus.as_deref().map_or(0, Node::count_nodes)
    }

    /// Removes the subscription of `key` to the filter made of the remaining `levels`, pruning
    /// child nodes that become empty.
    fn remove(&mut self, mut levels: Split<'_, char>, key: K) -> Option<V> {
        match levels.next() {
            None => self.exact.remove(key),
            Some("#") => self.multi.remove(key),
            Some("+") => {
                let child = self.plus.as_deref_mut()?;
                let removed = child.remove(levels, key);
                if child.is_empty() {
                    self.plus = None;
                }
                removed
            }
            Some(level) => {
                let child = self.children.get_mut(level)?;
                let removed = child.remove(levels, key);
                if child.is_empty() {
                    self.children.remove(level);
                    let (len, cap) = (self.children.len(), self.children.capacity());
                    if cap > 32 && len < cap / 4 {
                        self.children.shrink_to(len * 2);
                    }
                }
                removed
            }
        }
    }

    /// Calls `f` for every subscription at or below this node matching the remaining `levels`.
    fn walk<F: FnMut(K, &V)>(&self, mut levels: Split<'_, char>, f: &mut F) {
        for (k, v) in self.multi.iter() {
            f(*k, v);
        }
        match levels.next() {
            None => {
                for (k, v) in self.exact.iter() {
                    f(*k, v);
                }
            }
            Some(level) => {
                if let Some(child) = self.children.get(level) {
                    child.walk(levels.clone(), f);
                }
                if let Some(plus) = self.plus.as_deref() {
                    plus.walk(levels, f);
                }
            }
        }
    }
}

/// Subscriptions of one shard.
///
/// `K` identifies a subscriber (a session reference: `Copy + Eq + Hash`, compared often, so keep
/// it small); `V` is the per-subscription data (options, subscription identifier, ...). A
/// subscriber has at most one subscription per filter; subscribing again replaces it, as MQTT
/// requires.
///
/// Invariants: `len` is the number of `(filter, key)` pairs stored; every node except the root
/// holds a subscription or leads to one (empty nodes are pruned on removal), so memory follows
/// the live subscriptions, not their history.
pub struct SubscriptionTrie<K, V> {
    root: Node<K, V>,
    len: usize,
}

impl<K: Copy + Eq + Hash, V> Default for SubscriptionTrie<K, V> {
    fn default() -> Self {
        SubscriptionTrie::new()
    }
}

impl<K: Copy + Eq + Hash, V> SubscriptionTrie<K, V> {
    /// An empty trie (one root node, no allocation until the first insert).
    pub fn new() -> Self {
        SubscriptionTrie {
            root: Node::default(),
            len: 0,
        }
    }

    /// Adds the subscription of `key` to `filter`, or replaces its value; returns the previous
    /// value if it replaced one (the caller uses that to tell a new subscription from a renewed
    /// one, e.g. for MQTT 5.0 Retain Handling 1).
    ///
    /// `filter` must be a validated, non-shared filter. On an invalid one this does not panic;
    /// a `#` level ends the filter wherever it appears, as in
    /// [`crate::protocol::topic::matches`].
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        let mut levels = filter.split('/');
        let subscribers = loop {
            match levels.next() {
                None => break &mut node.exact,
                Some("#") => break &mut node.multi,
                Some("+") => node = node.plus.get_or_insert_with(Box::default),
                Some(level) => node = node.children.entry(level.into()).or_default(),
            }
        };
        let previous = subscribers.upsert(key, value);
        if previous.is_none() {
            self.len += 1;
        }
        previous
    }

    /// Removes the subscription of `key` to `filter` and returns its value, or `None` if there
    /// was none (MQTT 5.0 UNSUBACK then reports "No subscription existed"). Nodes left empty are
    /// pruned, so memory does not grow with subscribe/unsubscribe churn.
    pub fn remove(&mut self, filter: &str, key: K) -> Option<V> {
        let removed = self.root.remove(filter.split('/'), key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Calls `f(key, value)` once for every subscription whose filter matches `topic`, with the
    /// same rules as [`crate::protocol::topic::matches`], including [MQTT-4.7.2-1]: a topic
    /// starting with `$` is not matched by filters whose first level is `+` or `#`.
    ///
    /// A client with overlapping subscriptions (`a/+` and `a/#`) is reported once per matching
    /// subscription; merging them is the caller's job. The order is unspecified. No heap
    /// allocation happens here.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(K, &V)) {
        let mut levels = topic.split('/');
        if topic.starts_with('$') {
            // Skip the root's `#` list and `+` child; only a literal first level can match.
            let first = levels.next().unwrap_or("");
            if let Some(child) = self.root.children.get(first) {
                child.walk(levels, &mut f);
            }
        } else {
            self.root.walk(levels, &mut f);
        }
    }

    /// Number of subscriptions (`(filter, key)` pairs) stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no subscription is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of trie nodes, including the root (so an empty trie has 1). Walks the whole trie:
    /// for tests, metrics and leak checks, not for hot paths.
    pub fn node_count(&self) -> usize {
        self.root.count_nodes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::topic::matches;
    use crate::router::test_support::{all_filters, random_topic, XorShift, ALPHABET};

    fn random_filter(rng: &mut XorShift) -> String {
        let n = 1 + rng.below(4);
        let mut levels: Vec<&str> = Vec::new();
        for i in 0..n {
            let r = rng.below(10);
            if i == n - 1 && r < 2 {
                levels.push("#");
            } else if r < 4 {
                levels.push("+");
            } else {
                levels.push(ALPHABET[rng.below(ALPHABET.len())]);
            }
        }
        let filter = levels.join("/");
        // The empty string is not a valid topic filter.
        if filter.is_empty() {
            "+".to_string()
        } else {
            filter
        }
    }

    fn trie_matches(trie: &SubscriptionTrie<u32, u32>, topic: &str) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        trie.for_each_match(topic, |k, v| out.push((k, *v)));
        out.sort_unstable();
        out
    }

    fn brute_matches(subs: &[(String, u32, u32)], topic: &str) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = subs
            .iter()
            .filter(|(f, _, _)| matches(f, topic))
            .map(|(_, k, v)| (*k, *v))
            .collect();
        out.sort_unstable();
        out
    }

    /// Every topic of up to 3 levels over a small alphabet.
    fn all_topics() -> Vec<String> {
        let alphabet = ["", "$SYS", "a", "b"];
        let mut out: Vec<String> = alphabet.iter().map(|s| s.to_string()).collect();
        let mut last = out.clone();
        for _ in 1..3 {
            let mut next = Vec::new();
            for p in &last {
                for l in alphabet {
                    next.push(format!("{p}/{l}"));
                }
            }
            out.extend(next.iter().cloned());
            last = next;
        }
        out.retain(|t| !t.is_empty());
        out
    }

    #[test]
    fn exhaustive_small_space_agrees_with_topic_matches() {
        let filters = all_filters(&["", "$SYS", "a", "b", "+"]);
        let topics = all_topics();
        let mut trie = SubscriptionTrie::new();
        let mut subs = Vec::new();
        for (i, f) in filters.iter().enumerate() {
            let i = i as u32;
            assert!(
                crate::protocol::topic::validate_topic_filter(f, 8).is_ok(),
                "{f}"
            );
            assert_eq!(trie.insert(f, i, i * 10), None);
            subs.push((f.clone(), i, i * 10));
        }
        assert_eq!(trie.len(), filters.len());
        for t in &topics {
            assert_eq!(
                trie_matches(&trie, t),
                brute_matches(&subs, t),
                "topic {t:?}"
            );
        }
        for (f, k, _) in &subs {
            assert!(trie.remove(f, *k).is_some(), "{f}");
        }
        assert!(trie.is_empty());
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn random_subscriptions_agree_with_topic_matches_through_churn() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut trie = SubscriptionTrie::new();
        let mut subs: Vec<(String, u32, u32)> = Vec::new();
        for round in 0..4u32 {
            for _ in 0..300 {
                let f = random_filter(&mut rng);
                let k = rng.below(40) as u32;
                let v = round * 1000 + rng.below(1000) as u32;
                let prev = trie.insert(&f, k, v);
                match subs.iter_mut().find(|(sf, sk, _)| *sf == f && *sk == k) {
                    Some(entry) => {
                        assert_eq!(prev, Some(entry.2));
                        entry.2 = v;
                    }
                    None => {
                        assert_eq!(prev, None);
                        subs.push((f, k, v));
                    }
                }
            }
            assert_eq!(trie.len(), subs.len());
            for _ in 0..200 {
                let t = random_topic(&mut rng);
                assert_eq!(
                    trie_matches(&trie, &t),
                    brute_matches(&subs, &t),
                    "topic {t:?}"
                );
            }
            // Remove about half, plus some that do not exist.
            let mut i = 0;
            while i < subs.len() {
                if rng.below(2) == 0 {
                    let (f, k, v) = subs.swap_remove(i);
                    assert_eq!(trie.remove(&f, k), Some(v));
                    assert_eq!(trie.remove(&f, k), None);
                } else {
                    i += 1;
                }
            }
            assert_eq!(trie.remove("not/there", 1), None);
            assert_eq!(trie.len(), subs.len());
        }
        for (f, k, v) in subs.drain(..) {
            assert_eq!(trie.remove(&f, k), Some(v));
        }
        assert!(trie.is_empty());
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn replace_keeps_one_subscription() {
        let mut trie = SubscriptionTrie::new();
        assert_eq!(trie.insert("a/+", 7u32, 1u32), None);
        assert_eq!(trie.insert("a/+", 7, 2), Some(1));
        assert_eq!(trie.len(), 1);
        assert_eq!(trie_matches(&trie, "a/x"), vec![(7, 2)]);
        // Same key, different filter: a second subscription.
        assert_eq!(trie.insert("a/#", 7, 3), None);
        assert_eq!(trie.len(), 2);
        assert_eq!(trie_matches(&trie, "a/x"), vec![(7, 2), (7, 3)]);
        assert_eq!(trie.remove("a/+", 7), Some(2));
        assert_eq!(trie.remove("a/+", 7), None);
        assert_eq!(trie_matches(&trie, "a"), vec![(7, 3)]);
    }

    #[test]
    fn prune_after_removing_everything() {
        let mut trie = SubscriptionTrie::new();
        for (i, f) in ["a/b/c", "a/+/c", "a/#", "+/+/+", "#", "/", "//", "$SYS/#"]
            .iter()
            .enumerate()
        {
            trie.insert(f, i as u32, 0u32);
        }
        assert!(trie.node_count() > 1);
        // Removing an unknown key must not prune a node still in use.
        assert_eq!(trie.remove("a/b/c", 99), None);
        assert_eq!(trie_matches(&trie, "a/b/c").len(), 5);
        trie.remove("a/b/c", 0);
        assert_eq!(trie_matches(&trie, "a/b/c").len(), 4);
        for (i, f) in ["a/+/c", "a/#", "+/+/+", "#", "/", "//", "$SYS/#"]
            .iter()
            .enumerate()
        {
            assert_eq!(trie.remove(f, i as u32 + 1), Some(0), "{f}");
        }
        assert!(trie.is_empty());
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn dollar_topics_skip_root_wildcards() {
        let mut trie = SubscriptionTrie::new();
        trie.insert("#", 1u32, ());
        trie.insert("+/monitor/Clients", 2, ());
        trie.insert("$SYS/#", 3, ());
        trie.insert("$SYS/monitor/+", 4, ());
        trie.insert("+/#", 5, ());
        let mut seen = Vec::new();
        trie.for_each_match("$SYS/monitor/Clients", |k, _| seen.push(k));
        seen.sort_unstable();
        assert_eq!(seen, vec![3, 4]);
        seen.clear();
        trie.for_each_match("sys/monitor/Clients", |k, _| seen.push(k));
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2, 5]);
        seen.clear();
        // A '$' further in is an ordinary character.
        trie.for_each_match("a/$SYS", |k, _| seen.push(k));
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 5]);
    }

    #[test]
    fn multi_level_wildcard_matches_parent() {
        let mut trie = SubscriptionTrie::new();
        trie.insert("sport/tennis/player1/#", 1u32, ());
        for (t, n) in [
            ("sport/tennis/player1", 1),
            ("sport/tennis/player1/ranking", 1),
            ("sport/tennis/player1/score/wimbledon", 1),
            ("sport/tennis", 0),
            ("sport/tennis/player2", 0),
        ] {
            let mut count = 0;
            trie.for_each_match(t, |_, _| count += 1);
            assert_eq!(count, n, "{t}");
        }
    }

    #[test]
    fn large_fan_out_uses_index_and_stays_consistent() {
        let mut rng = XorShift(12345);
        let mut trie = SubscriptionTrie::new();
        let n = 10_000u32;
        for k in 0..n {
            assert_eq!(trie.insert("fan/out", k, k), None);
        }
        // Replace through the index.
        for k in (0..n).step_by(7) {
            assert_eq!(trie.insert("fan/out", k, k + n), Some(k));
        }
        // Remove in random order, checking a sample of lookups as the list shrinks.
        let mut keys: Vec<u32> = (0..n).collect();
        while !keys.is_empty() {
            let k = keys.swap_remove(rng.below(keys.len()));
            let expected = if k % 7 == 0 { k + n } else { k };
            assert_eq!(trie.remove("fan/out", k), Some(expected));
            assert_eq!(trie.remove("fan/out", k), None);
            if keys.len() % 997 == 0 || keys.len() < 40 {
                let mut got = Vec::new();
                trie.for_each_match("fan/out", |k, _| got.push(k));
                got.sort_unstable();
                let mut want = keys.clone();
                want.sort_unstable();
                assert_eq!(got, want);
            }
        }
        assert!(trie.is_empty());
        assert_eq!(trie.node_count(), 1);
    }

    #[test]
    fn subscribers_index_agrees_with_reference() {
        let mut rng = XorShift(777);
        let mut subs: Subscribers<u32, u32> = Subscribers::new();
        let mut reference = std::collections::HashMap::new();
        for step in 0..20_000u32 {
            let key = rng.below(80) as u32;
            if rng.below(3) == 0 {
                assert_eq!(subs.remove(key), reference.remove(&key));
            } else {
                assert_eq!(subs.upsert(key, step), reference.insert(key, step));
            }
            assert_eq!(subs.list.len(), reference.len());
            if let Some(index) = &subs.index {
                assert_eq!(index.len(), subs.list.len());
                for (pos, (k, _)) in subs.list.iter().enumerate() {
                    assert_eq!(index.get(k), Some(&pos));
                }
            }
        }
    }

    #[test]
    fn invalid_filters_do_not_panic() {
        let mut trie = SubscriptionTrie::new();
        for f in ["", "#/a", "a/#/b", "++", "a+/#"] {
            trie.insert(f, 1u32, ());
            trie.for_each_match(f, |_, _| {});
            trie.for_each_match("a/b", |_, _| {});
        }
        for f in ["", "#/a", "a/#/b", "++", "a+/#"] {
            trie.remove(f, 1);
        }
        assert!(trie.is_empty());
        assert_eq!(trie.node_count(), 1);
    }
}
