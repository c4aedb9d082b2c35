//! Integration tests for `EmbeddedStore`, one module per scenario. They all
//! go through the public `Store` trait and real files in a temp directory.

mod compaction;
mod concurrency;
mod crud;
mod durability;
mod kill9;
mod support;
mod throughput;
mod torn_tail;
mod watch;
