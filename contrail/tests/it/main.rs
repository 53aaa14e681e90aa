//! Integration tests of `contrail serve`, compiled as one binary.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod analytics;
mod answers;
mod consistency;
mod flush;
mod golden;
mod harness;
mod http;
mod process;
mod s3;
mod saved;
mod slt;
mod sql;
mod tenancy;
mod worker;
