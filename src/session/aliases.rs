//! MQTT 5 topic aliases of one connection, in both directions.
//!
//! Owns: [`InboundAliases`] (aliases a client set, bounded by the Topic Alias Maximum we advertise)
//! and [`OutboundAliases`] (aliases we assign to topics we send, bounded by the client's Topic Alias
//! Maximum and by [`MAX_OUTBOUND_ALIASES`], replaced least-recently-used first). Aliases belong to a
//! network connection, not to the session: both tables start empty on every CONNECT. Must not touch:
//! encoding (the caller puts the alias in the PUBLISH header).

use std::collections::HashMap;

/// At most this many aliases are assigned per connection whatever the client allows, so a client
/// advertising 65535 cannot make the broker keep a large table or scan it.
pub const MAX_OUTBOUND_ALIASES: u16 = 128;

/// Aliases set by the client: alias -> topic. The table is boxed and made by the first alias the
/// client sets, so a connection that never uses aliases (most of them) pays one pointer.
#[derive(Debug, Default)]
pub struct InboundAliases {
    // Boxed on purpose: `None` is one word where an empty `Vec` is three.
    #[allow(clippy::box_collection)]
    topics: Option<Box<Vec<Option<Box<str>>>>>,
}

impl InboundAliases {
    /// Records `alias` -> `topic` (alias already checked to be within 1..=our maximum).
    pub fn set(&mut self, alias: u16, topic: &str) {
        let slot = usize::from(alias.saturating_sub(1));
        let topics = self.topics.get_or_insert_with(Box::default);
        if topics.len() <= slot {
            topics.resize(slot + 1, None);
        }
        topics[slot] = Some(topic.into());
    }

    /// The topic `alias` stands for, if the client set it on this connection.
    pub fn get(&self, alias: u16) -> Option<&str> {
        let slot = usize::from(alias.checked_sub(1)?);
        self.topics.as_ref()?.get(slot)?.as_deref()
    }
}

/// How to send one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasUse {
    /// No alias: send the topic name.
    None,
    /// New or replaced alias: send the topic name and the alias.
    Assign(u16),
    /// Known alias: send an empty topic name and the alias.
    Reuse(u16),
}

/// Aliases the broker assigned: topic -> (alias, last use). Boxed and only allocated for clients
/// that accept aliases, so the common connection pays one pointer for the feature.
#[derive(Debug, Default)]
pub struct OutboundAliases(Option<Box<AliasTable>>);

#[derive(Debug, Default)]
struct AliasTable {
    max: u16,
    by_topic: HashMap<Box<str>, (u16, u64)>,
    by_alias: Vec<Box<str>>,
    clock: u64,
}

impl OutboundAliases {
    /// A table for a client whose CONNECT allowed `client_max` aliases (0 = none).
    pub fn new(client_max: u16) -> OutboundAliases {
        let max = client_max.min(MAX_OUTBOUND_ALIASES);
        OutboundAliases((max > 0).then(|| {
            Box::new(AliasTable {
                max,
                ..Default::default()
            })
        }))
    }

    /// Whether the client accepts aliases at all.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Decides how to send `topic`, assigning or replacing an alias when the table allows.
    pub fn use_for(&mut self, topic: &str) -> AliasUse {
        match self.0.as_deref_mut() {
            Some(table) => table.use_for(topic),
            None => AliasUse::None,
        }
    }
}

impl AliasTable {
    fn use_for(&mut self, topic: &str) -> AliasUse {
        self.clock += 1;
        let now = self.clock;
        if let Some(entry) = self.by_topic.get_mut(topic) {
            entry.1 = now;
            return AliasUse::Reuse(entry.0);
        }
        let alias = if self.by_alias.len() < usize::from(self.max) {
            self.by_alias.push(topic.into());
            self.by_alias.len() as u16
        } else {
            // Replace the least recently used alias.
            let Some((old, &(alias, _))) = self.by_topic.iter().min_by_key(|(_, (_, used))| *used)
            else {
                return AliasUse::None;
            };
            let old = old.clone();
            self.by_topic.remove(&old);
            self.by_alias[usize::from(alias - 1)] = topic.into();
            alias
        };
        self.by_topic.insert(topic.into(), (alias, now));
        AliasUse::Assign(alias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigns_reuses_and_replaces_least_recently_used() {
        let mut t = OutboundAliases::new(2);
        assert_eq!(t.use_for("a"), AliasUse::Assign(1));
        assert_eq!(t.use_for("b"), AliasUse::Assign(2));
        assert_eq!(t.use_for("a"), AliasUse::Reuse(1));
        // "b" is the least recently used: "c" takes its alias.
        assert_eq!(t.use_for("c"), AliasUse::Assign(2));
        assert_eq!(t.use_for("a"), AliasUse::Reuse(1));
        assert_eq!(t.use_for("b"), AliasUse::Assign(2));
    }

    #[test]
    fn no_aliases_when_client_allows_none_and_cap_applies() {
        assert_eq!(OutboundAliases::new(0).use_for("a"), AliasUse::None);
        let mut t = OutboundAliases::new(u16::MAX);
        for i in 0..MAX_OUTBOUND_ALIASES {
            assert_eq!(t.use_for(&i.to_string()), AliasUse::Assign(i + 1));
        }
        assert!(matches!(t.use_for("new"), AliasUse::Assign(a) if a <= MAX_OUTBOUND_ALIASES));
    }

    #[test]
    fn inbound_get_and_set() {
        let mut t = InboundAliases::default();
        assert_eq!(t.get(3), None);
        t.set(3, "x/y");
        assert_eq!(t.get(3), Some("x/y"));
        assert_eq!(t.get(0), None);
    }
}
