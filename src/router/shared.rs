//! Shared subscriptions (`$share/{group}/{filter}`, MQTT 5.0 section 4.8.2, also offered to 3.1.1
//! clients) of one router shard: each matching message goes to one member of each group.
//!
//! Owns: [`SharedGroups`] — groups keyed by their full filter, a trie from each group's inner filter
//! to the group, member choice (round-robin, random or sticky, preferring online members), and the
//! set of members whose session is offline. Must not touch: sessions, QoS flows or retained
//! messages (MQTT 5.0 section 4.8.2: retained messages are not sent when a session establishes a
//! shared subscription).

use std::sync::Arc;

use crate::config::SharedStrategy;
use crate::message::{SessionRef, SubEntry};
use crate::protocol::topic::split_shared;

use super::hash::FastMap;
use super::trie::SubscriptionTrie;

/// Identifies a group inside one shard.
type GroupId = u64;

struct Group {
    /// The full `$share/{group}/{filter}` text, as members subscribed with it.
    filter: Arc<str>,
    members: Vec<(SessionRef, SubEntry)>,
    /// Round-robin position, or the sticky member.
    cursor: usize,
}

/// The shared subscriptions of one shard.
#[derive(Default)]
pub struct SharedGroups {
    by_inner: SubscriptionTrie<GroupId, ()>,
    groups: FastMap<GroupId, Group>,
    ids: FastMap<Arc<str>, GroupId>,
    next_id: GroupId,
    away: FastMap<SessionRef, ()>,
    strategy: SharedStrategy,
    rng: u64,
    scratch: Vec<GroupId>,
}

/// One member chosen for a message.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The member session.
    pub to: SessionRef,
    /// Its subscription.
    pub entry: SubEntry,
    /// The group's full filter, so the message can be handed to another member later.
    pub filter: Arc<str>,
}

impl SharedGroups {
    /// No groups; members are chosen with `strategy`.
    pub fn new(strategy: SharedStrategy) -> SharedGroups {
        SharedGroups {
            strategy,
            rng: 0x9E37_79B9_7F4A_7C15,
            ..Default::default()
        }
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when there is no group.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Adds or updates `session` in the group of `filter` (a validated `$share/...` filter).
    pub fn subscribe(&mut self, filter: &Arc<str>, session: SessionRef, entry: SubEntry) {
        let Some((_, inner)) = split_shared(filter) else {
            return;
        };
        let id = match self.ids.get(filter) {
            Some(&id) => id,
            None => {
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1);
                self.ids.insert(filter.clone(), id);
                self.by_inner.insert(inner, id, ());
                let group = Group {
                    filter: filter.clone(),
                    members: Vec::new(),
                    cursor: 0,
                };
                self.groups.insert(id, group);
                id
            }
        };
        let Some(group) = self.groups.get_mut(&id) else {
            return;
        };
        match group.members.iter_mut().find(|(s, _)| *s == session) {
            Some(m) => m.1 = entry,
            None => group.members.push((session, entry)),
        }
    }

    /// Removes `session` from the group of `filter`; an emptied group is dropped.
    pub fn unsubscribe(&mut self, filter: &str, session: SessionRef) {
        let Some(&id) = self.ids.get(filter) else {
            return;
        };
        let Some(group) = self.groups.get_mut(&id) else {
            return;
        };
        group.members.retain(|(s, _)| *s != session);
        if group.members.is_empty() {
            self.groups.remove(&id);
            self.ids.remove(filter);
            if let Some((_, inner)) = split_shared(filter) {
                self.by_inner.remove(inner, id);
            }
        }
    }

    /// Marks a member session offline (`away`) or back online; offline members are chosen only
    /// when no online member is left. Ending a session clears its mark.
    pub fn set_away(&mut self, session: SessionRef, away: bool) {
        if away {
            self.away.insert(session, ());
        } else {
            self.away.remove(&session);
        }
    }

    /// Chooses one member of every group whose filter matches `topic`.
    pub fn for_each_choice(&mut self, topic: &str, mut f: impl FnMut(Chosen)) {
        if self.groups.is_empty() {
            return;
        }
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        self.by_inner.for_each_match(topic, |id, _| ids.push(id));
        for &id in &ids {
            if let Some(c) = self.choose(id, None) {
                f(c);
            }
        }
        self.scratch = ids;
    }

    /// Chooses a member of the group of `filter` other than `exclude`, for a message whose first
    /// member left before acknowledging it.
    pub fn choose_other(&mut self, filter: &str, exclude: SessionRef) -> Option<Chosen> {
        let id = *self.ids.get(filter)?;
        self.choose(id, Some(exclude))
    }

    fn choose(&mut self, id: GroupId, exclude: Option<SessionRef>) -> Option<Chosen> {
        let group = self.groups.get_mut(&id)?;
        let n = group.members.len();
        if n == 0 {
            return None;
        }
        let start = match self.strategy {
            SharedStrategy::Random => {
                // xorshift64: cheap, and good enough to spread load.
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                (self.rng % n as u64) as usize
            }
            _ => group.cursor % n,
        };
        let away = &self.away;
        let eligible = |i: usize| Some(group.members[i].0) != exclude;
        let scan = (0..n).map(|k| (start + k) % n);
        let pick = scan
            .clone()
            .find(|&i| eligible(i) && !away.contains_key(&group.members[i].0))
            .or_else(|| scan.clone().find(|&i| eligible(i)))?;
        group.cursor = match self.strategy {
            SharedStrategy::RoundRobin => pick + 1,
            SharedStrategy::Sticky => pick,
            SharedStrategy::Random => group.cursor,
        };
        let (to, entry) = group.members[pick];
        Some(Chosen {
            to,
            entry,
            filter: group.filter.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SubscriptionOptions;

    fn s(slot: u32) -> SessionRef {
        SessionRef {
            thread: 0,
            slot,
            generation: 0,
        }
    }

    fn entry() -> SubEntry {
        SubEntry {
            options: SubscriptionOptions::default(),
            id: None,
        }
    }

    fn picks(g: &mut SharedGroups, topic: &str, n: usize) -> Vec<u32> {
        let mut v = Vec::new();
        for _ in 0..n {
            g.for_each_choice(topic, |c| v.push(c.to.slot));
        }
        v
    }

    #[test]
    fn round_robin_gives_each_message_to_one_member_in_turn() {
        let mut g = SharedGroups::new(SharedStrategy::RoundRobin);
        let f: Arc<str> = "$share/g/a/+".into();
        for i in 1..=3 {
            g.subscribe(&f, s(i), entry());
        }
        assert_eq!(picks(&mut g, "a/x", 6), vec![1, 2, 3, 1, 2, 3]);
        assert!(picks(&mut g, "b/x", 1).is_empty());
    }

    #[test]
    fn online_members_are_preferred_and_sticky_stays() {
        let mut g = SharedGroups::new(SharedStrategy::Sticky);
        let f: Arc<str> = "$share/g/#".into();
        g.subscribe(&f, s(1), entry());
        g.subscribe(&f, s(2), entry());
        assert_eq!(picks(&mut g, "t", 3), vec![1, 1, 1]);
        g.set_away(s(1), true);
        assert_eq!(picks(&mut g, "t", 2), vec![2, 2]);
        g.set_away(s(2), true);
        assert_eq!(
            picks(&mut g, "t", 1).len(),
            1,
            "all away: still delivered to one"
        );
    }

    #[test]
    fn two_groups_each_get_a_copy_and_empty_groups_are_dropped() {
        let mut g = SharedGroups::new(SharedStrategy::Random);
        let f1: Arc<str> = "$share/one/t".into();
        let f2: Arc<str> = "$share/two/t".into();
        g.subscribe(&f1, s(1), entry());
        g.subscribe(&f2, s(2), entry());
        let mut got = picks(&mut g, "t", 1);
        got.sort();
        assert_eq!(got, vec![1, 2]);
        g.unsubscribe(&f1, s(1));
        g.unsubscribe(&f2, s(2));
        assert!(g.is_empty());
        assert!(picks(&mut g, "t", 1).is_empty());
    }

    #[test]
    fn choose_other_skips_the_leaving_member() {
        let mut g = SharedGroups::new(SharedStrategy::RoundRobin);
        let f: Arc<str> = "$share/g/t".into();
        g.subscribe(&f, s(1), entry());
        assert!(g.choose_other(&f, s(1)).is_none());
        g.subscribe(&f, s(2), entry());
        assert_eq!(g.choose_other(&f, s(1)).map(|c| c.to), Some(s(2)));
    }
}
