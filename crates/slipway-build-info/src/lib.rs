//! What every binary's `--version` prints after its name: the version, then
//! the commit and its date from build time (`0.1.0 (f64ed2f 2026-12-06)`;
//! `unknown` outside a git checkout unless `SLIPWAY_BUILD_COMMIT` and
//! `SLIPWAY_BUILD_DATE` say otherwise; see build.rs).
//!
//! A crate of its own, depended on only by the binaries' packages: its
//! build script reruns on every commit, and everything that depends on it
//! is rebuilt then. Kept out of slipway-core, a commit rebuilds the seven
//! binary packages, not the nine libraries under them.

/// The version line after the binary's name. Every binary shares the
/// workspace version. Use as `#[command(version = slipway_build_info::VERSION)]`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SLIPWAY_BUILD_COMMIT"),
    " ",
    env!("SLIPWAY_BUILD_DATE"),
    ")"
);
