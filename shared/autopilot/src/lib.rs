//! ECS Autopilot's I/O side: the ports, their AWS adapters, the handlers and the entry point,
//! over the pure core of [`autopilot_core`] (re-exported here under the same module names, so
//! `autopilot::triage` is the core's `triage`).
//!
//! - [`ports`]: the narrow traits the handlers depend on for everything outside the process.
//! - [`aws`]: the adapters implementing the ports on AWS; [`testkit`] (feature `testkit`):
//!   in-memory implementations for tests.
//! - [`app`]: each function's handler, orchestrating the core through the ports; [`entry`]
//!   runs a handler under the Lambda runtime or as a CLI over event files.
//! - [`telemetry`]: the tracing subscriber; [`env`]: what the process reads from its
//!   environment (the core takes it as values).

pub use autopilot_core::{
    arn, batch, config, domain, error, events, incident, keys, metrics, notify, present, routing,
    scaling, state, triage, trust,
};

pub mod app;
pub mod aws;
pub mod entry;
pub mod env;
pub mod ports;
pub mod stack_file;
pub mod telemetry;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use autopilot_core::VERSION;
pub use error::{AutopilotError, Result};
