//! Release artifacts (`make dist`): each function's Lambda package per architecture, zipped
//! the same way every time (fixed timestamps and permissions), `packaged.yaml` — the template
//! with every `CodeUri` naming its zip and `Architecture` pinned to what was built — the files
//! the Serverless Application Repository metadata names, and `SHA256SUMS` over all of it, so
//! that the stack deploys from `dist/` on a machine without Rust.

pub mod template;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use template::with_code_uris;

/// Errors say what and where, for the person running `make dist`.
pub type Result<T, E = String> = std::result::Result<T, E>;

/// The product's version (the workspace's, which every crate of it inherits).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The workspace this crate is built in.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text of `template.yaml`.
pub fn template_text() -> Result<String> {
    let path = workspace().join("template.yaml");
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The template's functions: logical id and binary.
pub const FUNCTIONS: [(&str, &str); 3] = [
    ("TaskTriageFunction", "task-triage"),
    ("AlarmScalerFunction", "alarm-scaler"),
    ("BatchRunnerFunction", "batch-runner"),
];

/// Files copied beside the packaged template: the SAR metadata's `LicenseUrl` and `ReadmeUrl`,
/// the changelog, and the member accounts' template.
const BESIDE: [&str; 4] = [
    "LICENSE",
    "README.md",
    "CHANGELOG.md",
    "member-template.yaml",
];

/// The binaries built for one architecture (`x86_64`, `arm64`): `<dir>/<binary>`.
#[derive(Debug, Clone)]
pub struct Build {
    pub arch: String,
    pub dir: PathBuf,
}

/// A Lambda package holding `binary` as `bootstrap`, byte for byte the same for the same
/// binary: one entry, a fixed time (1980-01-01) and mode 0755.
pub fn reproducible_zip(binary: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut buffer);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755);
    writer
        .start_file("bootstrap", options)
        .map_err(|e| e.to_string())?;
    writer.write_all(&bytes).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(buffer.into_inner())
}

/// The name of a function's package in `dist/`.
pub fn zip_name(binary: &str, arch: &str) -> String {
    format!("{binary}-{VERSION}-{arch}.zip")
}

/// `template` for the packages of `arch`: each function's `CodeUri` names its zip (beside the
/// template), its build metadata is gone, and the `Architecture` parameter allows `arch` only.
pub fn packaged_template(template: &str, arch: &str) -> Result<String> {
    let code: BTreeMap<&str, String> = FUNCTIONS
        .iter()
        .map(|(id, binary)| (*id, zip_name(binary, arch)))
        .collect();
    let template = with_code_uris(template, &code)?;
    let mut out = String::with_capacity(template.len());
    let mut in_architecture = false;
    let mut skipping_build_metadata = false;
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if skipping_build_metadata {
            if indent > 4 || trimmed.is_empty() {
                continue;
            }
            skipping_build_metadata = false;
        }
        if indent == 4 && trimmed == "Metadata:" {
            // A function's `BuildMethod`: `sam build` reads it; nothing is built from dist/.
            skipping_build_metadata = true;
            continue;
        }
        if indent == 2 {
            in_architecture = trimmed == "Architecture:";
        }
        if in_architecture && indent == 4 && trimmed.starts_with("Default:") {
            out.push_str(&format!("    Default: {arch}\n"));
        } else if in_architecture && indent == 4 && trimmed.starts_with("AllowedValues:") {
            out.push_str(&format!("    AllowedValues: [{arch}]\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// Writes `out` (emptied first) from `builds`; the first build's template is `packaged.yaml`,
/// each build's also `packaged-<arch>.yaml`. Returns the files written, by name.
pub fn write(out: &Path, builds: &[Build]) -> Result<Vec<String>> {
    if builds.is_empty() {
        return Err("no build to package".into());
    }
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let put = |name: &str, bytes: &[u8]| {
        std::fs::write(out.join(name), bytes).map_err(|e| format!("{name}: {e}"))
    };
    let template = template_text()?;
    let mut files = BTreeMap::new();
    for (i, build) in builds.iter().enumerate() {
        for (_, binary) in FUNCTIONS {
            let zip = reproducible_zip(&build.dir.join(binary))?;
            files.insert(zip_name(binary, &build.arch), zip);
        }
        let packaged = packaged_template(&template, &build.arch)?;
        if i == 0 {
            files.insert("packaged.yaml".into(), packaged.clone().into_bytes());
        }
        files.insert(
            format!("packaged-{}.yaml", build.arch),
            packaged.into_bytes(),
        );
    }
    for name in BESIDE {
        let path = workspace().join(name);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        files.insert(name.to_owned(), bytes);
    }
    let mut sums = String::new();
    for (name, bytes) in &files {
        put(name, bytes)?;
        sums.push_str(&format!("{}  {name}\n", hex(&Sha256::digest(bytes))));
    }
    put("SHA256SUMS", sums.as_bytes())?;
    let mut names: Vec<String> = files.into_keys().collect();
    names.push("SHA256SUMS".into());
    Ok(names)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_template_names_each_zip_and_pins_the_architecture() {
        let packaged = packaged_template(&template_text().unwrap(), "x86_64").unwrap();
        for (_, binary) in FUNCTIONS {
            let uri = format!("CodeUri: {}", zip_name(binary, "x86_64"));
            assert_eq!(packaged.matches(&uri).count(), 1, "{uri}");
        }
        assert!(!packaged.contains("CodeUri: .\n"));
        assert!(!packaged.contains("BuildMethod"));
        assert!(packaged.contains("    Default: x86_64\n    AllowedValues: [x86_64]\n"));
        // The application's own metadata stays, with the workspace's version.
        assert!(packaged.contains("AWS::ServerlessRepo::Application:"));
        assert!(packaged.contains(&format!("SemanticVersion: {}\n", VERSION)));
    }

    #[test]
    fn a_zip_holds_no_clock_and_an_executable_bootstrap() {
        let dir = std::env::temp_dir().join(format!("autopilot-zip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let binary = dir.join("bootstrap");
        std::fs::write(&binary, b"\x7fELF not really").unwrap();
        let zip = reproducible_zip(&binary).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        assert_eq!(archive.len(), 1);
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.last_modified(), Some(zip::DateTime::default()));
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
    }
}
