//! Driving cargo: building kernel images, running host unit tests, lints.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::arch::Arch;

/// A `cargo` command run from the workspace root.
pub fn cargo(workspace: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace);
    cmd
}

/// Build the kernel image for `arch`; returns its path.
pub fn build_image(workspace: &Path, arch: Arch, release: bool) -> Result<PathBuf> {
    arch.require_image(workspace)?;
    let (krate, _) = arch.image_crate();
    let mut cmd = cargo(workspace);
    cmd.args([
        "build",
        "--package",
        krate,
        "--target",
        arch.kernel_target(),
    ]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!(
            "building the {arch} kernel failed (cargo build -p {krate} --target {})",
            arch.kernel_target()
        );
    }
    Ok(arch.image_path(workspace, release))
}

/// Build (check) the arch crate of every arch, so no arch rots.
pub fn build_arch_crates(workspace: &Path) -> Result<()> {
    for arch in Arch::ALL {
        let status = cargo(workspace)
            .args([
                "build",
                "--quiet",
                "--package",
                arch.arch_crate(),
                "--target",
                arch.kernel_target(),
            ])
            .status()?;
        if !status.success() {
            bail!("the {arch} arch crate does not build");
        }
    }
    Ok(())
}

/// One host unit test result.
pub struct HostTest {
    /// `crate::module::test`.
    pub name: String,
    /// Passed.
    pub ok: bool,
}

/// The `test NAME ... RESULT` lines of libtest's output, ignored tests
/// left out ("ignored" may carry a reason after a comma).
fn parse_results(stdout: &str) -> Vec<HostTest> {
    stdout
        .lines()
        .filter_map(|line| {
            let (name, result) = line.strip_prefix("test ")?.rsplit_once(" ... ")?;
            (!result.starts_with("ignored")).then(|| HostTest {
                name: name.to_string(),
                ok: result == "ok",
            })
        })
        .collect()
}

/// Run `cargo test` on the host crates; returns each test's result and
/// whether cargo succeeded. Output is shown only when something failed.
pub fn host_tests(workspace: &Path, filter: Option<&str>) -> Result<Vec<HostTest>> {
    let mut cmd = cargo(workspace);
    // The default members are the host crates; the kernel images would turn
    // on core's global allocator for everyone (features unify).
    cmd.args(["test", "--no-fail-fast"]);
    if let Some(f) = filter {
        cmd.args(["--", f]);
    }
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .context("running cargo test")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results = parse_results(&stdout);
    if !out.status.success() {
        println!("{stdout}");
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        if results.iter().all(|t| t.ok) {
            bail!("cargo test failed before running tests (see above)");
        }
    }
    Ok(results)
}

/// Formatting and clippy on host crates and every kernel image.
pub fn lints(workspace: &Path) -> Result<Vec<(String, bool)>> {
    let mut checks = Vec::new();
    let fmt = cargo(workspace)
        .args(["fmt", "--all", "--", "--check"])
        .status()?;
    checks.push(("cargo fmt --check".to_string(), fmt.success()));
    // Kernel images are linted below for their own targets; on the host
    // they would link std through crates the host tools share with them.
    let mut host = cargo(workspace);
    host.args(["clippy", "--quiet", "--workspace", "--all-targets"]);
    for arch in Arch::ALL {
        if arch.has_image(workspace) {
            host.args(["--exclude", arch.image_crate().0]);
        }
    }
    let clippy = host.args(["--", "-D", "warnings"]).status()?;
    checks.push(("clippy (host crates)".to_string(), clippy.success()));
    for arch in Arch::ALL {
        let (krate, package) = if arch.has_image(workspace) {
            (arch.image_crate().0, "image")
        } else {
            (arch.arch_crate(), "arch crate")
        };
        let status = cargo(workspace)
            .args([
                "clippy",
                "--quiet",
                "--package",
                krate,
                "--target",
                arch.kernel_target(),
                "--",
                "-D",
                "warnings",
            ])
            .status()?;
        checks.push((format!("clippy ({arch} {package})"), status.success()));
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::parse_results;

    #[test]
    fn ignored_tests_with_a_reason_are_not_failures() {
        let r = parse_results(
            "test a ... ok\ntest b ... FAILED\ntest c ... ignored\ntest d ... ignored, upstream bug\n",
        );
        let got: Vec<(&str, bool)> = r.iter().map(|t| (t.name.as_str(), t.ok)).collect();
        assert_eq!(got, [("a", true), ("b", false)]);
    }
}
