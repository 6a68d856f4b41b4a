//! What every Slipway tool does at its edges, one module per concern: the
//! shared flags and the final error (`cli`), the report and its formats
//! (`output`), progress, secrets and their redaction, the CI environment
//! (`ci`), image references, durations and bounded input.
//!
//! Nothing here talks to git, a registry or a host: those are the crates
//! built on this one (slipway-git, slipway-registry, …). This crate never
//! parses a tool's own flags; the only places that write to stdout or
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
