//! ECS Autopilot shared library.
//!
//! Pure decisions live in [`triage`], [`scaling`], [`batch`], [`notify`] (rendering) and [`state`] (dedup
//! and storm arithmetic); AWS calls live in thin adapters under [`aws`]; [`app`] wires a function's
//! decision to its adapters; [`entry`] runs a function either under the Lambda runtime or as a
//! CLI over event files.

pub mod app;
pub mod aws;
pub mod batch;
pub mod config;
pub mod entry;
pub mod error;
pub mod events;
pub mod notify;
pub mod scaling;
pub mod state;
pub mod telemetry;
pub mod triage;

pub use error::{AutopilotError, Result};
