//! Warehouse integration tests, compiled as one binary. Every storage test
//! runs on the local file system and on a real S3-compatible server.

#![allow(clippy::unwrap_used)]

mod compaction;
mod faults;
mod harness;
mod incremental;
mod interop;
mod maintain;
mod property;
mod race;
