//! QEMU arguments for ppc64 guests (filled in by the ppc64 port).

use anyhow::{Result, bail};

use super::Vm;

pub(super) fn args(_vm: &Vm, _machine: &str) -> Result<Vec<String>> {
    bail!("the ppc64 port has not landed yet: there is no ppc64 kernel image to boot")
}
