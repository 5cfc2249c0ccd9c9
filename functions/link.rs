//! Build script shared by the function crates and the benchmark's echo baseline: links the
//! Linux binaries as fixed-address (non-PIE) executables.
//!
//! A position-independent binary of this size carries ~31 000 relative relocations, and the
//! dynamic loader writes each one at start, copying ~190 pages of `.data.rel.ro` and `.data`
//! before `main` (measured: 376 page faults and 2.5 ms from exec to exit for task-triage as
//! PIE, 172 and 1.7 ms without). Lambda pays those pages on every cold start. The cost is
//! address-space randomisation of the executable's own image (libraries, heap and stack stay
//! randomised). Set `AUTOPILOT_PIE=1` when building to keep PIE.

fn main() {
    println!("cargo:rerun-if-env-changed=AUTOPILOT_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let keep_pie = std::env::var_os("AUTOPILOT_PIE").is_some_and(|v| v == "1");
    if linux && !keep_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
