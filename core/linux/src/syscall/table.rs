//! The syscall table in docs/syscalls.md, generated from `IMPLEMENTED` and
//! the per-arch number tables; a test keeps the document true.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;

use super::{IMPLEMENTED, Status};
use crate::abi::{AARCH64, PPC64, X86_64};

/// The whole of docs/syscalls.md.
pub fn markdown() -> String {
    let arches = [&X86_64, &AARCH64, &PPC64];
    let mut rows: BTreeMap<&str, [Option<u32>; 3]> = BTreeMap::new();
    for (i, abi) in arches.iter().enumerate() {
        for &(nr, name) in abi.numbers {
            rows.entry(name).or_default()[i] = Some(nr);
        }
    }
    let (mut full, mut partial) = (0, 0);
    let mut body = String::new();
    for (name, numbers) in &rows {
        let status = match IMPLEMENTED.iter().find(|(n, _, _)| n == name) {
            Some((_, _, Status::Full)) => {
                full += 1;
                String::from("implemented")
            }
            Some((_, _, Status::Partial(what))) => {
                partial += 1;
                format!("partial: {what}")
            }
            None => String::from("ENOSYS"),
        };
        let nr = |n: Option<u32>| n.map_or(String::from("—"), |n| format!("{n}"));
        body.push_str(&format!(
            "| {name} | {} | {} | {} | {status} |\n",
            nr(numbers[0]),
            nr(numbers[1]),
            nr(numbers[2])
        ));
    }
    format!(
        "# Linux system calls in Keel\n\n\
         Generated from `core/linux/src/syscall/mod.rs` (`IMPLEMENTED`) and the\n\
         per-arch number tables; `cargo test -p keel-linux` fails when this file\n\
         and the code disagree. Regenerate with\n\
         `KEEL_BLESS=1 cargo test -p keel-linux syscall_table`.\n\n\
         Every call not implemented returns ENOSYS and is logged once with its\n\
         name. A number of — means the arch has no such call. {full} calls are\n\
         implemented in full and {partial} in part, of {} names across the three\n\
         arches.\n\n\
         | call | x86_64 | aarch64 | ppc64 | status |\n\
         |---|---|---|---|---|\n{body}",
        rows.len()
    )
}

#[cfg(test)]
mod tests {
    extern crate std;

    #[test]
    fn syscall_table_document_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/syscalls.md");
        let want = super::markdown();
        if std::env::var_os("KEEL_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/syscalls.md is out of date with IMPLEMENTED; regenerate it with KEEL_BLESS=1 cargo test -p keel-linux syscall_table"
        );
    }

    #[test]
    fn every_implemented_name_exists_on_some_arch() {
        for (name, _, _) in super::IMPLEMENTED {
            assert!(
                [&super::X86_64, &super::AARCH64, &super::PPC64]
                    .iter()
                    .any(|a| a.syscall_number(name).is_some()),
                "{name} is in IMPLEMENTED but no arch has it"
            );
        }
    }
}
