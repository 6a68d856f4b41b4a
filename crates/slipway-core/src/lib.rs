//! What more than one Slipway tool needs, one module per concern.
//!
//! Parsing and rules (`image_ref`, `config` checks) are pure and synchronous;
//! IO lives in modules named for what they talk to (`git`, `ci`). This crate
//! never parses a tool's own flags; the only places that write to stdout or
//! stderr are `output` (the report and workflow commands), `progress` and
//! `cli::finish` (the final error).

pub mod ci;
pub mod cli;
pub mod duration;
pub mod image_ref;
pub mod input;
pub mod output;
pub mod progress;
pub mod secret;
