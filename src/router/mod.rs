//! Sharded topic router.
//!
//! Each shard is a plain struct owning a subscription trie ([`trie::SubscriptionTrie`]) and a
//! retained-message store ([`retained::RetainedStore`]). Shards live in the I/O threads' cores
//! (`broker::routing`), which apply commands for their own shards inline and exchange batches of
//! commands and deliveries with the other threads over bounded crossbeam channels. Topics are
//! assigned to shards so that one shard answers a publish alone.
//!
//! Owns: the pure data structures of a shard and the fast hasher they use ([`hash`]), and the
//! shard itself and its sharding scheme ([`shard`]). Must not touch: sockets, threads, sessions or
//! the wire format; topic syntax lives in [`crate::protocol::topic`], which these structures
//! agree with.

pub mod hash;
pub mod retained;
pub mod retained_limit;
pub mod shard;
pub mod shared;
#[cfg(test)]
mod test_support;
pub mod trie;
