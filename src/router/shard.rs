//! One router shard: subscriptions and retained messages for the topics whose name hashes to it,
//! and the fan-out of each published message to matching sessions.
//!
//! Sharding scheme: a topic name belongs to the shard chosen by hashing its parent path (every
//! level but the last: `factory/line3/dev7` for `factory/line3/dev7/temp`). The topics of one
//! tree spread over every shard device by device instead of all landing in the shard of their
//! first level, and the readings of one device (`.../dev7/temp`, `.../dev7/hum`) stay together. A
//! filter whose parent path is literal and whose last level is literal or `+` can only match
//! topics with that parent, so it lives in that one shard; any other filter (a wildcard higher
//! up, or a trailing `#`, which also matches its own parent) is installed in every shard. So every
//! filter that can match a topic is in the topic's shard, which makes one shard's answer
//! complete: overlapping subscriptions of one session are merged there. Order: messages from one
//! publisher go to one shard per parent path in the order they were sent, so they reach each
//! subscriber in order per topic [MQTT-4.6.0-5] and, beyond the spec, in order among the topics of
//! one parent. Retained messages live in their topic's shard; a subscribe whose filter is in
//! every shard asks every shard for its retained matches. The price: such filters are held once
//! per shard (shards are one per I/O thread by default, so a few copies).
//!
//! Owns: [`Shard`], the shard-selection functions and the command/delivery types. Must not touch:
//! sessions, QoS flows, sockets or threads (the I/O threads' cores drive shards, `broker::routing`).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::message::{SessionRef, SharedMessage, SubEntry, SubIds};
use crate::protocol::QoS;

use crate::config::SharedStrategy;
use crate::protocol::topic::split_shared;
use crate::sys::is_sys_topic;

use super::hash::FastHasher;
use super::retained::RetainedStore;
use super::retained_limit::{RefusalLog, RetainedBudget};
use super::shared::{Chosen, SharedGroups};
use super::trie::SubscriptionTrie;

/// Work for a shard.
#[derive(Debug)]
pub enum Command {
    /// Add or replace a subscription; deliver matching retained messages if asked.
    Subscribe {
        /// The subscribing session.
        session: SessionRef,
        /// Validated, non-shared filter.
        filter: Arc<str>,
        /// Options and identifier.
        entry: SubEntry,
        /// Whether to deliver retained messages that match.
        send_retained: bool,
    },
    /// Remove a subscription.
    Unsubscribe {
        /// The session.
        session: SessionRef,
        /// The filter.
        filter: Arc<str>,
    },
    /// Route a message (and store/clear it as retained if flagged).
    Publish(SharedMessage),
    /// A message a shared-subscription member took but will not acknowledge (it unsubscribed or
    /// its session ended): give it to another member of the same group.
    Redeliver {
        /// The group's full `$share/...` filter.
        filter: Arc<str>,
        /// The message.
        msg: SharedMessage,
        /// The member that left.
        exclude: SessionRef,
    },
    /// Several commands from one I/O-thread turn, applied in order.
    Batch(Vec<Command>),
    /// A session with shared subscriptions went offline (`away`) or came back / ended.
    Away {
        /// The session.
        session: SessionRef,
        /// Whether it is offline now.
        away: bool,
    },
}

/// A message for one session, sent to the I/O thread that owns it.
#[derive(Debug)]
pub struct Delivery {
    /// Recipient.
    pub to: SessionRef,
    /// The shared message.
    pub msg: SharedMessage,
    /// QoS for this subscriber: min(published, granted).
    pub qos: QoS,
    /// RETAIN flag as the subscriber must see it.
    pub retain: bool,
    /// Subscription identifiers of the matching subscriptions.
    pub sub_ids: SubIds,
    /// For a shared subscription, the group's full filter (to hand the message on if needed).
    pub shared: Option<Arc<str>>,
}

/// A topic name's parent path: every level but the last (`""` for a one-level name).
fn parent(topic: &str) -> (&str, &str) {
    topic.rsplit_once('/').unwrap_or(("", topic))
}

fn shard_of_parent(parent: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let mut h = FastHasher::default();
    parent.hash(&mut h);
    (h.finish() % shards as u64) as usize
}

/// The shard a topic name belongs to: the one its parent path hashes to.
pub fn shard_of_topic(topic: &str, shards: usize) -> usize {
    shard_of_parent(parent(topic).0, shards)
}

/// The shard a filter belongs to, or `None` when it can match topics of several parent paths and
/// so belongs to all. A shared subscription goes where its inner filter goes.
pub fn shard_of_filter(filter: &str, shards: usize) -> Option<usize> {
    let filter = split_shared(filter).map_or(filter, |(_, inner)| inner);
    let (parent, last) = parent(filter);
    if last == "#" || parent.contains(['+', '#']) {
        None
    } else {
        Some(shard_of_parent(parent, shards))
    }
}

/// One shard's state.
pub struct Shard {
    subs: SubscriptionTrie<SessionRef, SubEntry>,
    shared: SharedGroups,
    retained: RetainedStore<SharedMessage>,
    /// Room for retained messages, shared with the other shards.
    budget: Arc<RetainedBudget>,
    refusals: RefusalLog,
    /// Retained messages this shard could not store since start (for `$SYS`).
    refused_total: u64,
    /// When this shard last swept its expired retained messages (see [`SWEEP_INTERVAL`]).
    last_sweep: Option<Instant>,
    scratch: Vec<(SessionRef, SubEntry)>,
}

/// Least time between two sweeps of one shard's expired retained messages. A sweep walks the
/// whole store, and happens only when the budget refuses a new topic; between sweeps, expired
/// messages still return their room when a SUBSCRIBE meets them.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

impl Shard {
    /// Retained messages delivered but not stored because the retained budget was full, since
    /// start (the admission rule, `broker::admission`).
    pub fn retained_refused(&self) -> u64 {
        self.refused_total
    }

    /// An empty shard whose shared subscriptions pick members with `strategy`, with no limit on
    /// retained messages.
    pub fn new(strategy: SharedStrategy) -> Shard {
        Shard::with_budget(strategy, Arc::new(RetainedBudget::unlimited()))
    }

    /// An empty shard that stores retained messages within `budget` (shared by all shards).
    pub fn with_budget(strategy: SharedStrategy, budget: Arc<RetainedBudget>) -> Shard {
        Shard {
            subs: SubscriptionTrie::new(),
            shared: SharedGroups::new(strategy),
            retained: RetainedStore::new(),
            budget,
            refusals: RefusalLog::default(),
            refused_total: 0,
            last_sweep: None,
            scratch: Vec::new(),
        }
    }

    /// Number of subscriptions held.
    pub fn subscriptions(&self) -> usize {
        self.subs.len()
    }

    /// Number of retained messages held.
    pub fn retained(&self) -> usize {
        self.retained.len()
    }

    /// Applies one command, calling `emit` for each delivery it produces.
    pub fn handle(&mut self, cmd: Command, now: Instant, emit: &mut impl FnMut(Delivery)) {
        match cmd {
            Command::Subscribe {
                session,
                filter,
                entry,
                send_retained,
            } => {
                if split_shared(&filter).is_some() {
                    // No retained messages for a new shared subscription (MQTT 5.0 4.8.2).
                    self.shared.subscribe(&filter, session, entry);
                    return;
                }
                self.subs.insert(&filter, session, entry);
                if send_retained {
                    self.send_retained(session, &filter, entry, now, emit);
                }
            }
            Command::Unsubscribe { session, filter } => {
                if split_shared(&filter).is_some() {
                    self.shared.unsubscribe(&filter, session);
                } else {
                    self.subs.remove(&filter, session);
                }
            }
            Command::Redeliver {
                filter,
                msg,
                exclude,
            } => {
                if let Some(c) = self.shared.choose_other(&filter, exclude) {
                    emit(shared_delivery(&msg, c));
                }
            }
            Command::Away { session, away } => self.shared.set_away(session, away),
            Command::Batch(cmds) => {
                for cmd in cmds {
                    self.handle(cmd, now, emit);
                }
            }
            Command::Publish(msg) => {
                if msg.retain {
                    self.retain(&msg, now);
                }
                self.fan_out(&msg, emit);
                self.shared
                    .for_each_choice(&msg.topic, |c| emit(shared_delivery(&msg, c)));
            }
        }
    }

    /// Stores or clears a retained message within the budget (policy: `retained_limit.rs`).
    fn retain(&mut self, msg: &SharedMessage, now: Instant) {
        if is_sys_topic(&msg.topic) {
            // The broker's own status topics: a fixed, small set that clients cannot publish to,
            // kept outside the budget so `max_retained_messages` stays the clients' to use.
            self.retained.insert(&msg.topic, msg.clone());
            return;
        }
        if msg.payload.is_empty() {
            if let Some(old) = self.retained.remove(&msg.topic) {
                self.budget.release(old.cost());
            }
            return;
        }
        // One descent: store, then settle the budget (a refused new topic is taken out again).
        if let Some(old) = self.retained.insert(&msg.topic, msg.clone()) {
            self.budget.replace(old.cost(), msg.cost());
            return;
        }
        let cost = msg.cost();
        let stored = self.budget.try_add(cost)
            || (self.sweep_expired(msg, now) && self.budget.try_add(cost));
        if !stored {
            self.retained.remove(&msg.topic);
            self.refused_total += 1;
            if let Some(n) = self.refusals.note(now) {
                log::warn!(
                    "retained store full ({} messages, {} bytes): {n} new retained topic(s) \
                     delivered but not stored, latest {:?} (limits.max_retained_messages / \
                     max_retained_bytes)",
                    self.budget.count(),
                    self.budget.bytes(),
                    msg.topic
                );
            }
        }
    }

    /// Removes this shard's expired retained messages (except `keep`, the one being stored) and
    /// gives their room back to the budget; at most once per [`SWEEP_INTERVAL`]. Without it,
    /// expired messages nobody subscribes to would hold their room forever. Returns whether any
    /// room was freed.
    fn sweep_expired(&mut self, keep: &SharedMessage, now: Instant) -> bool {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_INTERVAL)
        {
            return false;
        }
        self.last_sweep = Some(now);
        let budget = &self.budget;
        let freed = self.retained.remove_where(
            |m| m.is_expired(now) && !Arc::ptr_eq(m, keep),
            |m| budget.release(m.cost()),
        );
        freed > 0
    }

    /// Delivers the retained messages matching a new subscription; expired ones met on the way
    /// are removed from the store (nothing else would ever remove them).
    fn send_retained(
        &mut self,
        to: SessionRef,
        filter: &str,
        entry: SubEntry,
        now: Instant,
        emit: &mut impl FnMut(Delivery),
    ) {
        let mut expired = Vec::new();
        self.retained.for_each_match(filter, |topic, msg| {
            if msg.is_expired(now) {
                expired.push(topic.to_owned());
                return;
            }
            let sub_ids = entry.id.map_or(SubIds::None, SubIds::One);
            let qos = msg.qos.min(entry.options.qos);
            emit(Delivery {
                to,
                msg: msg.clone(),
                qos,
                retain: true,
                sub_ids,
                shared: None,
            });
        });
        for topic in expired {
            if let Some(old) = self.retained.remove(&topic) {
                self.budget.release(old.cost());
            }
        }
    }

    fn fan_out(&mut self, msg: &SharedMessage, emit: &mut impl FnMut(Delivery)) {
        let scratch = &mut self.scratch;
        scratch.clear();
        self.subs.for_each_match(&msg.topic, |who, entry| {
            if !(entry.options.no_local && msg.origin == Some(who)) {
                scratch.push((who, *entry));
            }
        });
        if scratch.len() > 1 {
            scratch.sort_unstable_by_key(|(who, _)| *who);
        }
        let mut i = 0;
        while i < scratch.len() {
            let (to, first) = scratch[i];
            let mut j = i + 1;
            while j < scratch.len() && scratch[j].0 == to {
                j += 1;
            }
            let group = &scratch[i..j];
            // Overlapping subscriptions of one session: one copy at the highest QoS, carrying every
            // subscription identifier (MQTT 5.0 section 3.3.4).
            let granted = group
                .iter()
                .map(|(_, e)| e.options.qos)
                .max()
                .unwrap_or(first.options.qos);
            let keep_retain = group.iter().any(|(_, e)| e.options.retain_as_published);
            let sub_ids = collect_ids(group);
            emit(Delivery {
                to,
                msg: msg.clone(),
                qos: msg.qos.min(granted),
                retain: msg.retain && keep_retain,
                sub_ids,
                shared: None,
            });
            i = j;
        }
    }
}

fn shared_delivery(msg: &SharedMessage, c: Chosen) -> Delivery {
    Delivery {
        to: c.to,
        msg: msg.clone(),
        qos: msg.qos.min(c.entry.options.qos),
        retain: msg.retain && c.entry.options.retain_as_published,
        sub_ids: c.entry.id.map_or(SubIds::None, SubIds::One),
        shared: Some(c.filter),
    }
}

fn collect_ids(group: &[(SessionRef, SubEntry)]) -> SubIds {
    let mut ids = group.iter().filter_map(|(_, e)| e.id);
    match (ids.next(), ids.next()) {
        (None, _) => SubIds::None,
        (Some(a), None) => SubIds::One(a),
        (Some(_), Some(_)) => SubIds::Many(group.iter().filter_map(|(_, e)| e.id).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::protocol::{Properties, SubscriptionOptions};
    use bytes::Bytes;
    use std::time::Duration;

    fn who(slot: u32) -> SessionRef {
        SessionRef {
            thread: 0,
            slot,
            generation: 0,
        }
    }

    fn entry(qos: QoS, id: Option<u32>) -> SubEntry {
        SubEntry {
            options: SubscriptionOptions {
                qos,
                ..Default::default()
            },
            id,
        }
    }

    fn message(topic: &str, qos: QoS, retain: bool, origin: Option<SessionRef>) -> SharedMessage {
        let payload = Bytes::from_static(b"p");
        let props = Properties::default();
        Arc::new(Message::new(
            topic.into(),
            payload,
            qos,
            retain,
            props,
            None,
            origin,
        ))
    }

    /// A gateway's topic tree (1,000 devices under 10 lines, two readings each) spreads over the
    /// shards: every shard holds between 75% and 125% of an even share.
    #[test]
    fn a_gateway_topic_tree_spreads_evenly_over_the_shards() {
        for shards in [2usize, 3, 4, 8] {
            let mut count = vec![0usize; shards];
            for line in 1..=10 {
                for dev in 0..100 {
                    for kind in ["temp", "hum"] {
                        let topic = format!("factory/line{line}/dev{dev}/{kind}");
                        count[shard_of_topic(&topic, shards)] += 1;
                    }
                }
            }
            let even = 2000 / shards;
            for (s, &n) in count.iter().enumerate() {
                assert!(
                    n * 4 >= even * 3 && n * 4 <= even * 5,
                    "{shards} shards: shard {s} has {n} of 2000 topics ({count:?})"
                );
            }
            // A device's readings stay together; filters go where their topics can be.
            let t = "factory/line1/dev1/temp";
            let home = Some(shard_of_topic(t, shards));
            assert_eq!(home, Some(shard_of_topic("factory/line1/dev1/hum", shards)));
            assert_eq!(shard_of_filter("factory/+/dev1/temp", shards), None);
            assert_eq!(shard_of_filter("factory/#", shards), None);
            assert_eq!(shard_of_filter("factory/line1/dev1/#", shards), None);
            assert_eq!(shard_of_filter(t, shards), home);
            assert_eq!(shard_of_filter("factory/line1/dev1/+", shards), home);
            let shared = "$share/g/factory/line1/dev1/temp";
            assert_eq!(shard_of_filter(shared, shards), home);
        }
    }

    fn run(shard: &mut Shard, cmd: Command, now: Instant) -> Vec<Delivery> {
        let mut out = Vec::new();
        shard.handle(cmd, now, &mut |d| out.push(d));
        out
    }

    fn sub(s: SessionRef, filter: &str, e: SubEntry, retained: bool) -> Command {
        Command::Subscribe {
            session: s,
            filter: filter.into(),
            entry: e,
            send_retained: retained,
        }
    }

    #[test]
    fn overlapping_subscriptions_give_one_copy_at_the_highest_qos_with_every_identifier() {
        let mut shard = Shard::new(SharedStrategy::RoundRobin);
        let now = Instant::now();
        run(
            &mut shard,
            sub(who(1), "a/+", entry(QoS::AtMostOnce, Some(1)), false),
            now,
        );
        run(
            &mut shard,
            sub(who(1), "a/#", entry(QoS::AtLeastOnce, Some(2)), false),
            now,
        );
        run(
            &mut shard,
            sub(who(2), "a/b", entry(QoS::ExactlyOnce, None), false),
            now,
        );
        let mut got = run(
            &mut shard,
            Command::Publish(message("a/b", QoS::ExactlyOnce, false, None)),
            now,
        );
        got.sort_by_key(|d| d.to);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].to, got[0].qos), (who(1), QoS::AtLeastOnce));
        let mut ids = got[0].sub_ids.as_slice().to_vec();
        ids.sort();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!((got[1].to, got[1].qos), (who(2), QoS::ExactlyOnce));
    }

    #[test]
    fn no_local_and_retain_as_published() {
        let mut shard = Shard::new(SharedStrategy::RoundRobin);
        let now = Instant::now();
        let mut nl = entry(QoS::AtMostOnce, None);
        nl.options.no_local = true;
        let mut rap = entry(QoS::AtMostOnce, None);
        rap.options.retain_as_published = true;
        run(&mut shard, sub(who(1), "t", nl, false), now);
        run(&mut shard, sub(who(2), "t", rap, false), now);
        run(
            &mut shard,
            sub(who(3), "t", entry(QoS::AtMostOnce, None), false),
            now,
        );
        let mut got = run(
            &mut shard,
            Command::Publish(message("t", QoS::AtMostOnce, true, Some(who(1)))),
            now,
        );
        got.sort_by_key(|d| d.to);
        let seen: Vec<(u32, bool)> = got.iter().map(|d| (d.to.slot, d.retain)).collect();
        assert_eq!(seen, vec![(2, true), (3, false)]);
    }

    fn retained_expiring(topic: &str, expires_at: Option<Instant>) -> SharedMessage {
        let (payload, props) = (Bytes::from_static(b"p"), Properties::default());
        let qos = QoS::AtMostOnce;
        Arc::new(Message::new(
            topic.into(),
            payload,
            qos,
            true,
            props,
            expires_at,
            None,
        ))
    }

    #[test]
    fn full_budget_sweeps_expired_retained_messages_at_most_once_a_second() {
        let budget = Arc::new(RetainedBudget::new(2, usize::MAX));
        let mut shard = Shard::with_budget(SharedStrategy::RoundRobin, budget.clone());
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let publish = |shard: &mut Shard, topic: &str, expires: Option<Instant>, now: Instant| {
            run(
                shard,
                Command::Publish(retained_expiring(topic, expires)),
                now,
            );
        };
        publish(&mut shard, "r/1", Some(at(5_000)), t0);
        publish(&mut shard, "r/2", None, t0);
        assert_eq!((shard.retained(), budget.count()), (2, 2));
        // Full, nothing expired: refused (and that sweep found nothing).
        publish(&mut shard, "r/3", None, at(1_000));
        assert_eq!((shard.retained(), budget.count()), (2, 2));
        // r/1 has expired and no SUBSCRIBE ever met it: the sweep frees its room for r/3.
        publish(&mut shard, "r/3", Some(at(6_500)), at(6_000));
        assert_eq!((shard.retained(), budget.count()), (2, 2));
        let got = run(
            &mut shard,
            sub(who(1), "r/#", entry(QoS::AtMostOnce, None), true),
            at(6_000),
        );
        let mut topics: Vec<&str> = got.iter().map(|d| &*d.msg.topic).collect();
        topics.sort_unstable();
        assert_eq!(topics, ["r/2", "r/3"]);
        // r/3 has expired, but the last sweep was under a second ago: refused.
        publish(&mut shard, "r/4", None, at(6_700));
        assert_eq!(shard.retained(), 2);
        assert!(run(
            &mut shard,
            sub(who(2), "r/4", entry(QoS::AtMostOnce, None), true),
            at(6_700)
        )
        .is_empty());
        // A second later the sweep runs again.
        publish(&mut shard, "r/4", None, at(7_000));
        assert_eq!((shard.retained(), budget.count()), (2, 2));
        assert_eq!(
            run(
                &mut shard,
                sub(who(3), "r/4", entry(QoS::AtMostOnce, None), true),
                at(7_000)
            )
            .len(),
            1
        );
        // Full, and the only expired message is the one being stored: refused, books balanced.
        publish(&mut shard, "r/5", Some(at(8_000)), at(9_000));
        assert_eq!((shard.retained(), budget.count()), (2, 2));
    }

    #[test]
    fn retained_budget_full_delivers_new_topics_unstored_and_always_replaces_or_clears() {
        let budget = Arc::new(RetainedBudget::new(2, usize::MAX));
        let mut shard = Shard::with_budget(SharedStrategy::RoundRobin, budget.clone());
        let now = Instant::now();
        run(
            &mut shard,
            sub(who(9), "r/#", entry(QoS::AtMostOnce, None), false),
            now,
        );
        let publish = |shard: &mut Shard, topic: &str, payload: &'static [u8]| {
            let m = message(topic, QoS::AtMostOnce, true, None);
            let m = Message::with_payload_for_test(&m, Bytes::from_static(payload));
            run(shard, Command::Publish(Arc::new(m)), now).len()
        };
        assert_eq!(publish(&mut shard, "r/1", b"a"), 1);
        assert_eq!(publish(&mut shard, "r/2", b"b"), 1);
        assert_eq!(
            publish(&mut shard, "r/3", b"c"),
            1,
            "delivered though not stored"
        );
        assert_eq!((shard.retained(), budget.count()), (2, 2));
        assert_eq!(shard.retained_refused(), 1, "counted for $SYS");
        assert_eq!(
            publish(&mut shard, "r/1", b"a2"),
            1,
            "replacing works when full"
        );
        assert_eq!(budget.bytes(), "r/1".len() + 2 + "r/2".len() + 1);
        let got = run(
            &mut shard,
            sub(who(1), "r/1", entry(QoS::AtMostOnce, None), true),
            now,
        );
        assert_eq!(&got[0].msg.payload[..], b"a2");
        publish(&mut shard, "r/2", b"");
        assert_eq!(
            (shard.retained(), budget.count()),
            (1, 1),
            "clearing frees room"
        );
        publish(&mut shard, "r/3", b"c");
        assert_eq!(shard.retained(), 2);
        assert_eq!(
            shard.retained_refused(),
            1,
            "replacing and storing later are not refusals"
        );
    }

    #[test]
    fn retained_sent_on_subscribe_deleted_by_empty_payload_and_expired_ones_purged() {
        let mut shard = Shard::new(SharedStrategy::RoundRobin);
        let now = Instant::now();
        run(
            &mut shard,
            Command::Publish(message("r/1", QoS::AtLeastOnce, true, None)),
            now,
        );
        let mut expiring = Message::clone_for_test(&message("r/2", QoS::AtMostOnce, true, None));
        expiring.expires_at = Some(now + Duration::from_secs(5));
        run(&mut shard, Command::Publish(Arc::new(expiring)), now);
        assert_eq!(shard.retained(), 2);
        let got = run(
            &mut shard,
            sub(who(1), "r/#", entry(QoS::AtMostOnce, None), true),
            now,
        );
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|d| d.retain));
        let later = now + Duration::from_secs(6);
        let got = run(
            &mut shard,
            sub(who(2), "r/#", entry(QoS::AtMostOnce, None), true),
            later,
        );
        assert_eq!(got.len(), 1, "the expired one is not delivered");
        assert_eq!(shard.retained(), 1, "and is purged");
        let r1 = message("r/1", QoS::AtMostOnce, true, None);
        let empty = Message::with_payload_for_test(&r1, Bytes::new());
        run(&mut shard, Command::Publish(Arc::new(empty)), later);
        assert_eq!(shard.retained(), 0);
    }

    #[test]
    fn filters_that_match_several_parent_paths_belong_to_every_shard() {
        assert_eq!(shard_of_filter("#", 4), None);
        assert_eq!(shard_of_filter("+/x", 4), None);
        assert_eq!(shard_of_filter("$share/g/+/x", 4), None);
        assert_eq!(
            shard_of_filter("a/#", 4),
            None,
            "a/# also matches a, whose parent is \"\""
        );
        let a = Some(shard_of_topic("a/b", 4));
        assert_eq!(shard_of_filter("$share/g/a/+", 4), a);
        assert_eq!(shard_of_filter("$share/g/a/b", 4), a);
        assert_eq!(shard_of_filter("+", 4), Some(shard_of_topic("t", 4)));
        assert_eq!(shard_of_topic("anything", 1), 0);
    }
}
