//! The command line of `ready-wait`; the doc comments are its `--help`.
//!
//! Values stay as typed here; `run` parses them into a [`crate::Plan`] so a
//! bad one is reported with the flag, the value and what would be valid.

use std::path::PathBuf;

const AFTER_HELP: &str = "\
Examples:
  ready-wait http://localhost:8080/api/ready
  ready-wait --timeout 2m --stable 3 https://app.example.com/api/ready
  ready-wait --json-path '$.status' --equals ok http://127.0.0.1:8080/health
  ready-wait --any tcp://db:5432 tcp://db-replica:5432
  ready-wait --env staging            (ready_url and ready_timeout from slipway.toml)

One line per state change goes to stderr; the report (--format) to stdout.

Exit codes:
  0  ready
  1  not ready before --timeout (the report still names each target's last status, error and body)
  2  usage or config error (bad URL, status, regex, JSONPath, duration, flag combination)";

/// Wait until HTTP(S) or TCP endpoints are really ready.
///
/// Polls each TARGET until it answers as asked (status, body, JSON) for
/// `--stable` attempts in a row, pausing `--interval` between attempts and
/// growing the pause ×1.5 per failure up to `--max-interval`, and gives up at
/// `--timeout`.
#[derive(Debug, clap::Parser)]
#[command(name = "ready-wait", version = slipway_build_info::VERSION, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,

    /// Endpoints: `http://host[:port]/path`, `https://…` or `tcp://host:port`
    /// (`localhost` tries ::1 and 127.0.0.1)
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Take `ready_url` and `ready_timeout` of this env in slipway.toml as defaults
    #[arg(long, env = "SLIPWAY_ENV", value_name = "NAME")]
    pub env: Option<String>,

    /// Ready when every target is ready (the default)
    #[arg(long, conflicts_with = "any")]
    pub all: bool,

    /// Ready as soon as one target is ready
    #[arg(long)]
    pub any: bool,

    /// Give up after this long overall, e.g. `90s`, `2m`, up to `1week`; each target still gets
    /// one attempt, so `0s` checks once [default: 60s]
    #[arg(long, env = "SLIPWAY_READY_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,

    /// Give up on one attempt after this long (from the second attempt on, capped by what is
    /// left of --timeout)
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub attempt_timeout: String,

    /// Pause after the first failed attempt; grows ×1.5 per failure, minus up to 20% jitter
    #[arg(
        long,
        env = "SLIPWAY_READY_INTERVAL",
        default_value = "250ms",
        value_name = "DURATION"
    )]
    pub interval: String,

    /// Longest pause between attempts
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub max_interval: String,

    /// Successful attempts in a row needed before a target counts as ready
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub stable: u32,

    /// Pause before the first attempt
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub initial_delay: String,

    /// HTTP method
    #[arg(short = 'X', long, default_value = "GET")]
    pub method: String,

    /// Extra request header, `Name: value` (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,

    /// Accepted statuses: `200`, `200,204`, `200-299`, `2xx`
    #[arg(long, default_value = "200-299", value_name = "STATUSES")]
    pub status: String,

    /// The body must contain this text
    #[arg(long, value_name = "TEXT")]
    pub body_contains: Option<String>,

    /// The body must match this regular expression (Rust `regex` syntax)
    #[arg(long, value_name = "REGEX")]
    pub body_regex: Option<String>,

    /// The body must be JSON where this JSONPath (RFC 9535) selects a value
    /// other than `null` or `false`, or the --equals value
    #[arg(long, value_name = "PATH")]
    pub json_path: Option<String>,

    /// The value --json-path must select: a string, or JSON such as `true` or `3`
    #[arg(long, value_name = "VALUE", requires = "json_path")]
    pub equals: Option<String>,

    /// Follow HTTP redirects (up to 10); without it a 3xx is the answer
    #[arg(long)]
    pub follow: bool,

    /// Also trust the certificates in this PEM file (repeatable; system roots stay trusted); `--ca-cert`, as the registry tools spell it, is the same flag
    #[arg(
        long,
        env = "SLIPWAY_CACERT",
        value_name = "FILE",
        visible_alias = "ca-cert"
    )]
    pub cacert: Vec<PathBuf>,

    /// Accept any TLS certificate: no verification at all
    #[arg(long)]
    pub insecure: bool,
}
