//! What more than one Slipway tool needs, one module per concern.
//!
//! Parsing and rules (`image_ref`, `config` checks) are pure and synchronous;
//! IO lives in modules named for what they talk to (`git`, `ci`). This crate
//! never parses a tool's own flags; the only places that write to stdout or
//! stderr are `output` (the report and workflow commands), `progress` and
//! `cli::finish` (the final error).

pub mod auth;
pub mod changes;
pub mod ci;
pub mod cli;
pub mod config;
pub mod contract;
pub mod duration;
pub mod git;
pub mod image_ref;
pub mod input;
pub mod output;
pub mod paths;
pub mod progress;
pub mod ready;
pub mod registry;
pub mod secret;
pub mod stale;
pub mod tags;
pub mod version;
