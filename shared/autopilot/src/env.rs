//! The process environment, read here and handed to the core as values: the core's
//! `from_lookup` constructors take [`var`] so that they never touch the environment themselves.

/// The value of an environment variable, if it is set and valid Unicode.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
