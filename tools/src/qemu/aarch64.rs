//! QEMU arguments for aarch64 guests (filled in by the aarch64 port).

use anyhow::{Result, bail};

use super::Vm;

pub(super) fn args(_vm: &Vm, _machine: &str) -> Result<Vec<String>> {
    bail!("the aarch64 port has not landed yet: there is no aarch64 kernel image to boot")
}
