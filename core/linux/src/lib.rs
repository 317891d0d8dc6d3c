//! Keel's Linux personality: runs one unmodified Linux program. It builds
//! the root filesystem (ramfs filled from the initial ramdisk, with /dev,
//! /proc, /sys and /etc defaults), loads the ELF program, and serves its
//! system calls with Linux's numbers, layouts and semantics on each arch.
//!
//! All of it is safe code over core's primitives; `install` registers it
//! with core as the app's system-call and fault handler.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

#[cfg(test)]
extern crate keel_platform_host;

pub mod abi;
pub mod errno;
pub mod fdtable;
pub mod futex;
pub mod loader;
pub mod mem;
pub mod objects;
pub mod paths;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod signal;
pub mod syscall;
pub mod thread;
pub mod time_util;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_core::kprintln;
use keel_fs::devfs::DeviceFile;
use keel_hal::machine;

use crate::fdtable::Fd;
use crate::thread::LinuxThread;

/// Register the Linux personality with core (the image crate calls this
/// once, before booting).
pub fn install() {
    keel_core::app::install(keel_core::app::AppHooks {
        syscall: syscall::dispatch,
        fault: signal::app_fault,
        run,
    });
    keel_fs::set_interrupt_check(signal::interrupted);
}

/// Environment every program starts with; `NAME=value` words before the
/// program on the command line add to it or replace entries.
const DEFAULT_ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "TERM=linux",
    "LANG=C.UTF-8",
];

/// Split the app words into environment assignments and argv.
pub fn split_env(words: &[String]) -> (Vec<String>, Vec<String>) {
    let mut env: Vec<String> = DEFAULT_ENV.iter().map(|s| String::from(*s)).collect();
    let mut rest = words;
    while let Some((first, tail)) = rest.split_first() {
        let is_assignment = first.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && !name.starts_with('/')
                && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
        });
        if !is_assignment {
            break;
        }
        let name = first.split_once('=').map_or("", |(n, _)| n);
        env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(name));
        env.push(first.clone());
        rest = tail;
    }
    (env, rest.to_vec())
}

/// Run the program named by `words` (environment assignments, then argv);
/// returns its exit status when its last thread exits. (`exit_group`
/// powers off directly.)
pub fn run(words: &[String]) -> u8 {
    let Some(abi) = abi::by_name(machine::arch_name()) else {
        kprintln!("keel: no Linux ABI for arch {}", machine::arch_name());
        return 126;
    };
    let (envp, argv) = split_env(words);
    let Some(program) = argv.first().cloned() else {
        kprintln!("keel: nothing to run: the command line has only environment settings");
        return 127;
    };
    let vfs = match rootfs::build() {
        Ok(v) => v,
        Err(e) => {
            kprintln!("keel: cannot build the root filesystem: {e}");
            return 1;
        }
    };
    let p = process::create(abi, vfs);
    syscall::init(abi);
    // NICs are registered by now (device discovery ran before main).
    keel_net::on_dns_change(|servers| {
        let names: Vec<String> = servers.iter().map(|s| alloc::format!("{s}")).collect();
        rootfs::write_resolv_conf(&process::get().vfs, &names);
    });
    keel_net::start();
    {
        let mut fds = p.fds.lock();
        for _ in 0..3 {
            // The console, open for reading and writing, as init's are.
            let _ = fds.insert(Fd {
                file: DeviceFile::console(true, true),
                cloexec: false,
            });
        }
    }
    let loaded = match loader::load(abi, &program, &argv, &envp) {
        Ok(l) => l,
        Err(e) => {
            kprintln!("keel: cannot run {program}: {e}");
            return e.status();
        }
    };
    *p.exe.lock() = loaded.exe.clone();
    *p.argv.lock() = loaded.argv.clone();
    *p.envp.lock() = envp;
    *p.auxv.lock() = loaded.auxv.clone();
    let tid = p.new_tid();
    let main = LinuxThread::new(tid, 0);
    let name = loaded.exe.rsplit('/').next().unwrap_or("app").as_bytes();
    main.name.lock()[..name.len().min(15)].copy_from_slice(&name[..name.len().min(15)]);
    p.add_thread(main.clone(), None);
    let handle = keel_core::app::spawn_app_thread(
        "app-main".into(),
        loaded.frame,
        None,
        main.clone() as Arc<dyn core::any::Any + Send + Sync>,
    );
    main.core.call_once(|| Arc::downgrade(handle.thread()));
    p.set_core_thread(tid, handle.thread().clone());
    drop(handle);
    p.wait_all_exited() as u8
}

/// The app is done (exit_group, or a fatal signal): power off with `status`.
pub fn shutdown_with(status: u8) -> ! {
    keel_core::boot::shutdown(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn leading_assignments_become_environment() {
        let (env, argv) = split_env(&words("FOO=1 HOME=/x /bin/prog A=B"));
        assert_eq!(argv, words("/bin/prog A=B"));
        assert!(env.contains(&"FOO=1".into()));
        assert!(env.contains(&"HOME=/x".into()));
        assert!(!env.contains(&"HOME=/root".into()));
        let (_, argv) = split_env(&words("/path=odd"));
        assert_eq!(argv, words("/path=odd"));
    }
}
