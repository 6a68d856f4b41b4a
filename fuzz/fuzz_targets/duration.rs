//! Durations as users type them (every `--timeout`-like flag, slipway.toml
//! `ready_timeout`/`lock_timeout`, through `slipway_core::duration`):
//! parsing never panics; what parses lies in the documented range, can be
//! added to `Instant::now()` without overflow, and formats to a text that
//! parses back to the same duration; `parse_positive` accepts exactly the
//! non-zero results of `parse`.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use slipway_core::duration::{self, MAX, MIN_POSITIVE};

fuzz_target!(|input: &str| {
    let parsed = duration::parse(input);
    let positive = duration::parse_positive(input);
    match &parsed {
        Ok(value) => {
            assert!(*value <= MAX, "`{input}` parsed to {value:?}, above the maximum");
            assert!(
                Instant::now().checked_add(*value).is_some(),
                "`{input}` overflows a deadline"
            );
            let _ = duration::deadline(Instant::now(), *value);
            let text = duration::format(*value);
            assert_eq!(
                duration::parse(&text).as_ref(),
                Ok(value),
                "`{input}` formats as `{text}`, which parses to another duration"
            );
            match &positive {
                Ok(p) => assert!(*p == *value && *p >= MIN_POSITIVE, "`{input}`"),
                Err(_) => assert!(*value < MIN_POSITIVE, "`{input}` refused as not positive"),
            }
        }
        Err(error) => {
            assert!(positive.is_err(), "`{input}`: parse_positive accepts what parse refuses");
            assert!(!error.to_string().is_empty());
        }
    }
});
