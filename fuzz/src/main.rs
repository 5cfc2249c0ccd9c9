//! `autopilot-fuzz`: runs the structure-aware fuzzer over each function (`make fuzz` runs a
//! million inputs per function in release) and keeps each finding (a panic, an input over the
//! time bound) as a file under `fuzz/findings/`, to be moved into `fuzz/regressions/` once fixed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use autopilot_fuzz::{run, seeds, Function};
use clap::Parser;

/// Fuzz each function's parse + decide path in process (offline: no AWS call).
#[derive(Debug, Parser)]
#[command(name = "autopilot-fuzz")]
struct Cli {
    /// Inputs per function.
    #[arg(long, default_value_t = 1_000_000)]
    inputs: usize,
    /// Seed of the generator (a run is repeatable).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// An input taking longer than this (milliseconds) counts as a hang.
    #[arg(long, default_value_t = 1_000)]
    bound_ms: u64,
    /// Only this function (task-triage, alarm-scaler, batch-runner).
    #[arg(long)]
    function: Option<String>,
    /// The fixtures directory.
    #[arg(default_value = "tests/fixtures")]
    fixtures: PathBuf,
    /// Where findings are written.
    #[arg(long, default_value = "fuzz/findings")]
    findings: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut found = 0;
    for function in Function::ALL {
        if cli
            .function
            .as_deref()
            .is_some_and(|f| Function::named(f) != Some(function))
        {
            continue;
        }
        let seeds = seeds(&cli.fixtures, function);
        if seeds.is_empty() {
            eprintln!(
                "{}: no seeds under {}",
                function.name(),
                cli.fixtures.display()
            );
            return ExitCode::FAILURE;
        }
        let bound = Duration::from_millis(cli.bound_ms);
        let report = run(function, &seeds, cli.inputs, cli.seed, bound);
        println!("{}", report.summary(function));
        let inputs = report
            .panics
            .iter()
            .map(|(input, _)| input)
            .chain(report.slow.iter().map(|(input, _)| input));
        for (i, input) in inputs.enumerate() {
            let _ = std::fs::create_dir_all(&cli.findings);
            let path = cli
                .findings
                .join(format!("{}-{}-{i}.json", function.name(), cli.seed));
            if let Err(error) = std::fs::write(&path, input) {
                eprintln!("{}: {error}", path.display());
            }
            found += 1;
        }
        for (_, message) in report.panics.iter().take(5) {
            println!("  panic: {message}");
        }
        for (_, took) in report.slow.iter().take(5) {
            println!("  over the bound: {:.1} ms", took.as_secs_f64() * 1e3);
        }
    }
    if found > 0 {
        println!(
            "{found} finding(s) written under {}",
            cli.findings.display()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
