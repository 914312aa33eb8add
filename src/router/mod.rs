//! Sharded topic router.
//!
//! Each shard is a plain struct owning a subscription trie ([`trie::SubscriptionTrie`]) and a
//! retained-message store ([`retained::RetainedStore`]), driven by a thin thread loop fed over
//! crossbeam channels. Topics are assigned to shards so that one shard answers a publish alone.
//!
//! Owns: the pure data structures of a shard and the fast hasher they use ([`hash`]), the shard
//! itself and its sharding scheme ([`shard`]), and the shard thread loop ([`worker`]). Must not touch: sockets, sessions or the wire format; topic syntax lives in
//! [`crate::protocol::topic`], which these structures agree with.

pub mod hash;
pub mod retained;
pub mod retained_limit;
pub mod shard;
pub mod shared;
#[cfg(test)]
mod test_support;
pub mod trie;
pub mod worker;
