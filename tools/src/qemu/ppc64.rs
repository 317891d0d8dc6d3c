//! QEMU arguments for ppc64 guests: `pseries` (PAPR), booted through VOF
//! (`x-vof=on`, QEMU's minimal Open Firmware: the fast path) or SLOF
//! (what a default QEMU/KVM guest gets), on a POWER9 or POWER10 CPU.
//!
//! Machine names carry the variants: `pseries[-vof|-slof][-power9|-power10]`
//! (`pseries` alone is VOF on POWER9). The `cap-*` settings turn off
//! speculation-barrier capabilities TCG cannot provide (QEMU would warn
//! at every boot); `-action panic=exit-failure` makes RTAS `ibm,os-term`
//! (Keel's failure and panic path) end QEMU with status 1.

use anyhow::{Result, bail};

use super::Vm;

/// Firmware and CPU of a pseries machine name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pseries {
    /// Boot through SLOF (else VOF).
    pub slof: bool,
    /// QEMU `-cpu` model.
    pub cpu: &'static str,
}

/// Parse `pseries[-vof|-slof][-power9|-power10]`.
pub fn parse_machine(machine: &str) -> Result<Pseries> {
    let Some(rest) = machine.strip_prefix("pseries") else {
        bail!("unknown ppc64 machine '{machine}' (known: pseries[-vof|-slof][-power9|-power10])");
    };
    let mut p = Pseries {
        slof: false,
        cpu: "power9",
    };
    for part in rest.split('-').filter(|s| !s.is_empty()) {
        match part {
            "vof" => p.slof = false,
            "slof" => p.slof = true,
            "power9" => p.cpu = "power9",
            "power10" => p.cpu = "power10",
            other => bail!(
                "unknown part '{other}' in ppc64 machine '{machine}' (known: pseries[-vof|-slof][-power9|-power10])"
            ),
        }
    }
    Ok(p)
}

pub(super) fn args(_vm: &Vm, machine: &str) -> Result<Vec<String>> {
    let p = parse_machine(machine)?;
    let mut m = String::from("pseries");
    if !p.slof {
        m.push_str(",x-vof=on");
    }
    m.push_str(",cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off");
    Ok(vec![
        "-M".into(),
        m,
        "-cpu".into(),
        p.cpu.into(),
        "-action".into(),
        "panic=exit-failure".into(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_encode_firmware_and_cpu() {
        assert_eq!(
            parse_machine("pseries").unwrap(),
            Pseries {
                slof: false,
                cpu: "power9"
            }
        );
        assert_eq!(
            parse_machine("pseries-slof-power10").unwrap(),
            Pseries {
                slof: true,
                cpu: "power10"
            }
        );
        assert_eq!(parse_machine("pseries-vof-power10").unwrap().cpu, "power10");
        assert!(parse_machine("pseries-power8").is_err());
        assert!(parse_machine("virt").is_err());
    }
}
