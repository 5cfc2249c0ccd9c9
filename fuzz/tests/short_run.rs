//! The short fuzzing run of `make test` (20,000 inputs per function, debug build) and the
//! regression inputs kept under `fuzz/regressions/`: no panic, no input over the bound, every
//! rejection a named error type; and the mutations reach deep enough that each function both
//! answers and rejects.

use std::path::Path;
use std::time::Duration;

use autopilot::AutopilotError;
use autopilot_fuzz::{check, run, seeds, Function};

const INPUTS: usize = 20_000;
/// Generous for a debug build: the release run's bound is 1 s.
const BOUND: Duration = Duration::from_secs(10);

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

#[test]
fn twenty_thousand_mutated_inputs_per_function_end_in_an_answer_or_a_named_error() {
    for function in Function::ALL {
        let seeds = seeds(&fixtures(), function);
        assert!(!seeds.is_empty(), "{}: seeds", function.name());
        let report = run(function, &seeds, INPUTS, 20_261_128, BOUND);
        println!("{}", report.summary(function));
        assert_eq!(report.inputs, INPUTS);
        let panics: Vec<&String> = report.panics.iter().map(|(_, m)| m).collect();
        assert!(panics.is_empty(), "{}: {panics:?}", function.name());
        assert!(
            report.slow.is_empty(),
            "{}: {:?}",
            function.name(),
            report.slow.iter().map(|(_, t)| t).collect::<Vec<_>>()
        );
        for kind in report.rejected.keys() {
            assert!(
                *kind == "InvalidJson" || AutopilotError::ERROR_TYPES.contains(kind),
                "{kind}"
            );
        }
        assert!(
            report.answered > INPUTS / 20,
            "{}: answers",
            function.name()
        );
        assert!(report.rejected.get("InvalidEvent").copied().unwrap_or(0) > INPUTS / 20);
        assert!(report.rejected.contains_key("InvalidJson"));
    }
}

#[test]
fn kept_regressions_end_in_an_answer_or_a_named_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "regressions are kept in {}",
        dir.display()
    );
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let function = Function::ALL
            .into_iter()
            .find(|f| name.starts_with(f.name()))
            .unwrap_or_else(|| panic!("{name}: named after its function"));
        let text = std::fs::read_to_string(&file).unwrap();
        let report = check(function, std::iter::once(text), BOUND);
        assert!(report.panics.is_empty(), "{name}: {:?}", report.panics[0].1);
        assert!(report.slow.is_empty(), "{name}: {:?}", report.slowest);
        println!("{name}: {:?} {:?}", report.answered, report.rejected);
    }
}
