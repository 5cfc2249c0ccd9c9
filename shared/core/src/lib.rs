//! ECS Autopilot's pure core: every decision the functions make, as functions over plain data
//! (event + configuration + observed state + time → decision).
//!
//! Nothing here performs I/O, reads the clock or the environment, or depends on an AWS, async
//! or Lambda crate; Cargo enforces it (this crate's manifest), and `clippy.toml` beside it
//! refuses the clock and environment reads that `std` and `chrono` would allow.
//!
//! - [`domain`]: the shared vocabulary (severities, services, formats); [`arn`]: ARNs, parsed
//!   once.
//! - [`events`]: parsing each function's events at the edge, errors naming the field.
//! - [`triage`], [`scaling`], [`batch`]: the three functions' decisions and their notices' words.
//! - [`incident`], [`state`]: incidents and the arithmetic of dedup, storms and memories;
//!   [`keys`]: every key of the state table.
//! - [`notify`] (rendering for every channel) and [`routing`] (where a notice goes).
//! - [`config`]: the one configuration document, its types and validation.
//! - [`metrics`] (the Embedded Metric Format document) and [`present`] (text for people).
//! - [`error`]: the error type every layer shares, with its stable `error_type`.
//! - [`trust`]: which accounts may move the stack.

/// The product's version (the workspace's, one for every crate): `--version`, notification
/// footers and EMF documents say it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod arn;
pub mod batch;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod incident;
pub mod keys;
pub mod metrics;
pub mod notify;
pub mod present;
pub mod routing;
pub mod scaling;
pub mod state;
pub mod triage;
pub mod trust;

pub use error::{AutopilotError, Result};
