//! The release chain — `release`, `promote`, `rollback`, `install-hooks` —
//! as a library: run by the shipped `slipway` program (`src/main.rs`) and by
//! `cargo xtask` from a checkout.
//!
//! The chain runs the nine tool binaries as processes and reads their JSON
//! reports into `slipway_core::contract` types; it never re-implements a
//! tool's logic and never builds a tool (see [`tools`] for where it finds
//! them). It prints for people: steps and tool logs on stderr, the summary
//! table on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod command;
pub mod hooks;
pub mod promote;
pub mod release;
pub mod rollback;
pub mod runner;
pub mod tools;

pub use command::Command;
