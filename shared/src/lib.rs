//! ECS Autopilot shared library.
//!
//! - Pure core (no I/O, no clock): [`domain`] (shared types), [`events`] (parsing), [`triage`],
//!   [`scaling`] and [`batch`] (decisions and the words of their notices), [`notify`]
//!   (rendering), [`routing`] (where a notice goes, rules and windows), [`state`] (dedup and
//!   storm arithmetic), [`config`], [`present`] (the CLI's text for people).
//! - [`ports`]: the narrow traits the handlers depend on for everything outside the process.
//! - [`aws`]: the adapters implementing the ports on AWS; [`testkit`] (feature `testkit`):
//!   in-memory implementations for tests.
//! - [`app`]: each function's handler, orchestrating the core through the ports; [`entry`]
//!   runs a handler under the Lambda runtime or as a CLI over event files.

pub mod app;
pub mod aws;
pub mod batch;
pub mod config;
pub mod domain;
pub mod entry;
pub mod error;
pub mod events;
pub mod incident;
pub mod metrics;
pub mod notify;
pub mod ports;
pub mod present;
pub mod routing;
pub mod scaling;
pub mod state;
pub mod telemetry;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod triage;

pub use error::{AutopilotError, Result};
