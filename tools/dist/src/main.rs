//! `make dist`: writes `dist/` from the release binaries of each architecture built.
//!
//! `autopilot-dist OUT ARCH=DIR [ARCH=DIR …]` (DIR holds `task-triage`, `alarm-scaler`,
//! `batch-runner`); the first architecture's template is `packaged.yaml`.

use std::path::PathBuf;
use std::process::ExitCode;

use autopilot_dist::{self as dist, Build};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: autopilot-dist OUT ARCH=DIR [ARCH=DIR …]");
        return ExitCode::FAILURE;
    };
    let builds: Option<Vec<Build>> = args
        .map(|arg| {
            let (arch, dir) = arg.split_once('=')?;
            Some(Build {
                arch: arch.to_owned(),
                dir: PathBuf::from(dir),
            })
        })
        .collect();
    let Some(builds) = builds else {
        eprintln!("each build is ARCH=DIR");
        return ExitCode::FAILURE;
    };
    match dist::write(&PathBuf::from(&out), &builds) {
        Ok(files) => {
            for file in files {
                let size = std::fs::metadata(PathBuf::from(&out).join(&file))
                    .map(|m| m.len())
                    .unwrap_or_default();
                println!("{out}/{file}: {size} bytes");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
