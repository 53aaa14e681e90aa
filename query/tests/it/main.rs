//! Integration tests of `contrail serve`, compiled as one binary.

mod golden;
mod harness;
mod process;
mod flush;
mod http;
