//! The management shell: one command line in, text and an exit status out,
//! over keel-mgmt's `System` trait.
//!
//! Nothing here knows about SSH or terminals, so the same shell serves an
//! SSH `exec` request, an interactive SSH session (through
//! [`crate::console::Console`]) and, later, the serial console.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use keel_mgmt::format::rfc3339;
use keel_mgmt::system::{
    AppSpec, AppState, FileKind, LogStream, OpenMode, PowerAction, SysError, System, ThreadState,
};

/// `cat` stops after this much: the shell buffers a command's output, and
/// big files are what the REST API's streamed downloads are for.
pub const CAT_LIMIT: usize = 1024 * 1024;
/// Copy chunk for `cp`/`mv`, so a large file never sits whole in memory.
const COPY_CHUNK: usize = 64 * 1024;

/// What a command produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// Normal output.
    pub stdout: String,
    /// Error messages.
    pub stderr: String,
    /// Exit status: 0 success, 1 failure, 2 usage error, 127 unknown command.
    pub status: u8,
    /// What the front end should do besides printing.
    pub action: Action,
}

/// A request from a command to whoever runs the shell.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing; read the next line.
    #[default]
    None,
    /// End the session (`exit`, `logout`).
    Exit,
    /// Clear the screen (`clear`); a terminal front end sends the escape.
    Clear,
}

impl Output {
    fn fail(&mut self, status: u8, message: core::fmt::Arguments<'_>) {
        let _ = self.stderr.write_fmt(message);
        self.stderr.push('\n');
        self.status = status;
    }
}

/// One line of help per command, also the dispatch table's documentation.
const HELP: &[(&str, &str)] = &[
    ("help", "this list"),
    ("ls [-l] [PATH...]", "list directories"),
    ("cat FILE...", "print files"),
    ("cd [DIR]", "change directory (default /)"),
    ("pwd", "print the current directory"),
    ("mkdir DIR...", "create directories"),
    ("rm [-r] PATH...", "remove files (-r: directories too)"),
    ("cp SRC DST", "copy a file"),
    ("mv SRC DST", "move a file (copy, then remove)"),
    ("df", "filesystem space"),
    ("free", "memory"),
    ("uptime", "time since boot"),
    ("date", "wall-clock time (UTC)"),
    ("dmesg", "kernel log"),
    ("ps", "threads, CPU% since boot"),
    ("top", "threads by CPU% since the last top"),
    ("ifconfig", "network interfaces"),
    ("ip [addr|route|link]", "interfaces, addresses, routes"),
    ("netstat", "socket counts"),
    ("env", "environment new apps inherit"),
    ("export NAME=VALUE", "set a variable for new apps"),
    ("unset NAME", "remove a variable"),
    ("run PROGRAM [ARG...]", "start an app"),
    ("apps", "apps started so far"),
    ("logs ID", "an app's recent output"),
    ("kill [-SIGNAL] ID", "signal an app (default TERM)"),
    ("uname [-a]", "system name"),
    ("hostname", "host name"),
    ("clear", "clear the screen"),
    ("reboot", "restart the VM"),
    ("poweroff", "stop the VM"),
    ("exit", "end the session"),
];

/// Shell state that lives across lines: the current directory and the last
/// `top` sample (so `top` shows CPU% over the time since it last ran).
#[derive(Debug, Clone)]
pub struct Shell {
    cwd: String,
    last_top: Option<(u64, Vec<(u64, u64)>)>,
}

impl Default for Shell {
    fn default() -> Self {
        Self::new()
    }
}

impl Shell {
    /// A shell in `/`.
    pub fn new() -> Self {
        Shell {
            cwd: "/".to_string(),
            last_top: None,
        }
    }

    /// The current directory.
    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// The interactive prompt, e.g. `keel:/etc$ `.
    pub fn prompt<S: System>(&self, sys: &S) -> String {
        format!("{}:{}$ ", sys.hostname(), self.cwd)
    }

    /// Run one command line.
    pub fn run<S: System>(&mut self, sys: &mut S, line: &str) -> Output {
        let mut out = Output::default();
        let words = match split(line) {
            Ok(w) => w,
            Err(e) => {
                out.fail(2, format_args!("keel: {e}"));
                return out;
            }
        };
        let Some((cmd, args)) = words.split_first() else {
            return out;
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match cmd.as_str() {
            "help" => help(&mut out),
            "ls" => self.ls(sys, &args, &mut out),
            "cat" => self.cat(sys, &args, &mut out),
            "cd" => self.cd(sys, &args, &mut out),
            "pwd" => {
                out.stdout = format!("{}\n", self.cwd);
            }
            "mkdir" => self.each_path(sys, "mkdir", &args, &mut out, |s, p| s.mkdir(p)),
            "rm" => self.rm(sys, &args, &mut out),
            "cp" => self.cp(sys, &args, false, &mut out),
            "mv" => self.cp(sys, &args, true, &mut out),
            "df" => df(sys, &mut out),
            "free" => free(sys, &mut out),
            "uptime" => {
                out.stdout = format!("up {}\n", duration(sys.uptime_ns()));
            }
            "date" => match sys.wall_clock_ns() {
                Some(ns) => out.stdout = format!("{}\n", rfc3339(ns - ns % 1_000_000_000)),
                None => out.fail(1, format_args!("date: this machine has no wall clock")),
            },
            "dmesg" => {
                out.stdout = sys.dmesg();
                if !out.stdout.is_empty() && !out.stdout.ends_with('\n') {
                    out.stdout.push('\n');
                }
            }
            "ps" => ps(sys, &mut out),
            "top" => self.top(sys, &mut out),
            "ifconfig" => ifconfig(sys, &mut out),
            "ip" => ip(sys, &args, &mut out),
            "netstat" => netstat(sys, &mut out),
            "env" | "printenv" => {
                for (k, v) in sys.env_list() {
                    let _ = writeln!(out.stdout, "{k}={v}");
                }
            }
            "export" => export(sys, &args, &mut out),
            "unset" => {
                if args.is_empty() {
                    out.fail(2, format_args!("usage: unset NAME..."));
                }
                for name in &args {
                    if let Err(e) = sys.env_remove(name) {
                        out.fail(1, format_args!("unset: {name}: {e}"));
                    }
                }
            }
            "run" => self.start(sys, &args, &mut out),
            "apps" => apps(sys, &mut out),
            "logs" => logs(sys, &args, &mut out),
            "kill" => kill(sys, &args, &mut out),
            "uname" => {
                let v = sys.version();
                out.stdout = if args.first() == Some(&"-a") {
                    format!(
                        "{} {} {} {} {}\n",
                        v.name,
                        sys.hostname(),
                        v.version,
                        v.build,
                        v.arch
                    )
                } else {
                    format!("{}\n", v.name)
                };
            }
            "hostname" => out.stdout = format!("{}\n", sys.hostname()),
            "echo" => out.stdout = format!("{}\n", args.join(" ")),
            "clear" => out.action = Action::Clear,
            "reboot" => power(sys, PowerAction::Reboot, "reboot", &mut out),
            "poweroff" | "halt" | "shutdown" => {
                power(sys, PowerAction::PowerOff, "poweroff", &mut out)
            }
            "exit" | "logout" => out.action = Action::Exit,
            other => out.fail(127, format_args!("{other}: command not found (try 'help')")),
        }
        out
    }

    /// `path` made absolute against the current directory, with `.`, `..`
    /// and repeated slashes resolved (`..` at `/` stays at `/`).
    pub fn resolve(&self, path: &str) -> String {
        let mut parts: Vec<&str> = Vec::new();
        let base = if path.starts_with('/') {
            ""
        } else {
            self.cwd.as_str()
        };
        for part in base.split('/').chain(path.split('/')) {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        let mut s = String::new();
        for p in &parts {
            s.push('/');
            s.push_str(p);
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    }

    fn each_path<S: System>(
        &self,
        sys: &mut S,
        name: &str,
        args: &[&str],
        out: &mut Output,
        mut op: impl FnMut(&mut S, &str) -> Result<(), SysError>,
    ) {
        if args.is_empty() {
            out.fail(2, format_args!("usage: {name} PATH..."));
        }
        for arg in args {
            if let Err(e) = op(sys, &self.resolve(arg)) {
                out.fail(1, format_args!("{name}: {arg}: {e}"));
            }
        }
    }

    fn ls<S: System>(&self, sys: &mut S, args: &[&str], out: &mut Output) {
        let long = args.contains(&"-l");
        let paths: Vec<&str> = args.iter().copied().filter(|a| *a != "-l").collect();
        let paths = if paths.is_empty() { vec!["."] } else { paths };
        for (i, arg) in paths.iter().enumerate() {
            let path = self.resolve(arg);
            let stat = match sys.stat(&path) {
                Ok(s) => s,
                Err(e) => {
                    out.fail(1, format_args!("ls: {arg}: {e}"));
                    continue;
                }
            };
            if stat.kind != FileKind::Directory {
                entry_line(&mut out.stdout, arg, &stat, long);
                continue;
            }
            if paths.len() > 1 {
                if i > 0 {
                    out.stdout.push('\n');
                }
                let _ = writeln!(out.stdout, "{arg}:");
            }
            match sys.list_dir(&path) {
                Ok(mut entries) => {
                    entries.sort_by(|a, b| a.name.cmp(&b.name));
                    for e in &entries {
                        entry_line(&mut out.stdout, &e.name, &e.stat, long);
                    }
                }
                Err(e) => out.fail(1, format_args!("ls: {arg}: {e}")),
            }
        }
    }

    fn cat<S: System>(&self, sys: &mut S, args: &[&str], out: &mut Output) {
        if args.is_empty() {
            out.fail(2, format_args!("usage: cat FILE..."));
        }
        let mut data = Vec::new();
        for arg in args {
            match read_file(
                sys,
                &self.resolve(arg),
                CAT_LIMIT - data.len().min(CAT_LIMIT),
            ) {
                Ok((bytes, complete)) => {
                    data.extend_from_slice(&bytes);
                    if !complete {
                        out.fail(
                            1,
                            format_args!(
                                "cat: {arg}: output stops at {} KiB; download big files with the REST API",
                                CAT_LIMIT / 1024
                            ),
                        );
                        break;
                    }
                }
                Err(e) => out.fail(1, format_args!("cat: {arg}: {e}")),
            }
        }
        out.stdout = String::from_utf8_lossy(&data).into_owned();
    }

    fn cd<S: System>(&mut self, sys: &mut S, args: &[&str], out: &mut Output) {
        let target = self.resolve(args.first().copied().unwrap_or("/"));
        match sys.stat(&target) {
            Ok(s) if s.kind == FileKind::Directory => self.cwd = target,
            Ok(_) => out.fail(1, format_args!("cd: {}: not a directory", args[0])),
            Err(e) => out.fail(
                1,
                format_args!("cd: {}: {e}", args.first().copied().unwrap_or("/")),
            ),
        }
    }

    fn rm<S: System>(&self, sys: &mut S, args: &[&str], out: &mut Output) {
        let recursive = args.iter().any(|a| *a == "-r" || *a == "-rf" || *a == "-R");
        let paths: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| !a.starts_with('-'))
            .collect();
        if paths.is_empty() {
            out.fail(2, format_args!("usage: rm [-r] PATH..."));
        }
        for arg in paths {
            let path = self.resolve(arg);
            if path == "/" {
                out.fail(1, format_args!("rm: refusing to remove /"));
                continue;
            }
            let result = match sys.stat(&path) {
                Ok(s) if s.kind == FileKind::Directory && !recursive => Err(SysError::IsDirectory),
                Ok(s) if s.kind == FileKind::Directory => remove_tree(sys, &path, 0),
                Ok(_) => sys.remove(&path),
                Err(e) => Err(e),
            };
            match result {
                Err(SysError::IsDirectory) => {
                    out.fail(1, format_args!("rm: {arg}: is a directory (use rm -r)"))
                }
                Err(e) => out.fail(1, format_args!("rm: {arg}: {e}")),
                Ok(()) => {}
            }
        }
    }

    fn cp<S: System>(&self, sys: &mut S, args: &[&str], remove_source: bool, out: &mut Output) {
        let name = if remove_source { "mv" } else { "cp" };
        let [src_arg, dst_arg] = args else {
            out.fail(2, format_args!("usage: {name} SRC DST"));
            return;
        };
        let src = self.resolve(src_arg);
        let mut dst = self.resolve(dst_arg);
        match sys.stat(&src) {
            Ok(s) if s.kind == FileKind::Directory => {
                out.fail(
                    1,
                    format_args!("{name}: {src_arg}: directories are not supported"),
                );
                return;
            }
            Ok(_) => {}
            Err(e) => {
                out.fail(1, format_args!("{name}: {src_arg}: {e}"));
                return;
            }
        }
        // Into a directory: keep the source's name, as cp and mv do.
        if let Ok(s) = sys.stat(&dst)
            && s.kind == FileKind::Directory
        {
            let base = src.rsplit('/').next().unwrap_or("");
            dst = self.resolve(&format!("{dst}/{base}"));
        }
        if dst == src {
            out.fail(
                1,
                format_args!("{name}: {src_arg} and {dst_arg} are the same file"),
            );
            return;
        }
        if let Err(e) = copy_file(sys, &src, &dst) {
            out.fail(1, format_args!("{name}: {src_arg} -> {dst_arg}: {e}"));
            return;
        }
        if remove_source && let Err(e) = sys.remove(&src) {
            out.fail(
                1,
                format_args!("mv: copied, but removing {src_arg} failed: {e}"),
            );
        }
    }

    fn top<S: System>(&mut self, sys: &mut S, out: &mut Output) {
        let now = sys.uptime_ns();
        let threads = sys.threads();
        let (since, before) = self.last_top.take().unwrap_or((0, Vec::new()));
        let interval = now.saturating_sub(since).max(1);
        let mem = sys.memory();
        let running = threads
            .iter()
            .filter(|t| t.state == ThreadState::Running)
            .count();
        let _ = writeln!(
            out.stdout,
            "up {}, {} threads ({} running), memory {} used of {}, CPU% over the last {}",
            duration(now),
            threads.len(),
            running,
            bytes(mem.total.saturating_sub(mem.free)),
            bytes(mem.total),
            duration(interval)
        );
        let mut rows: Vec<(u64, &keel_mgmt::system::ThreadInfo)> = threads
            .iter()
            .map(|t| {
                let prev = before
                    .iter()
                    .find(|(id, _)| *id == t.id)
                    .map_or(0, |(_, ns)| *ns);
                (t.cpu_time_ns.saturating_sub(prev), t)
            })
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
        thread_table(
            &mut out.stdout,
            rows.iter().map(|(used, t)| (*t, *used, interval)),
        );
        self.last_top = Some((now, threads.iter().map(|t| (t.id, t.cpu_time_ns)).collect()));
    }

    fn start<S: System>(&self, sys: &mut S, args: &[&str], out: &mut Output) {
        let Some((program, _)) = args.split_first() else {
            out.fail(2, format_args!("usage: run PROGRAM [ARG...]"));
            return;
        };
        let spec = AppSpec {
            path: self.resolve(program),
            argv: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
        };
        match sys.app_start(&spec) {
            Ok(id) => {
                let _ = writeln!(out.stdout, "started app {id}: {}", spec.path);
            }
            Err(e) => out.fail(1, format_args!("run: {program}: {e}")),
        }
    }
}

/// Split a command line into words: blanks separate, single quotes keep
/// everything, double quotes keep everything but `\"` and `\\`, a
/// backslash outside quotes escapes the next character.
pub fn split(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(core::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated '"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \""),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \""),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("trailing backslash"),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn help(out: &mut Output) {
    out.stdout.push_str("Keel management shell. Commands:\n");
    for (usage, what) in HELP {
        let _ = writeln!(out.stdout, "  {usage:<22} {what}");
    }
}

/// Read up to `limit` bytes of a file; the flag says whether that was all.
fn read_file<S: System>(
    sys: &mut S,
    path: &str,
    limit: usize,
) -> Result<(Vec<u8>, bool), SysError> {
    let mut file = sys.open(path, OpenMode::Read)?;
    let mut data = Vec::new();
    let mut chunk = vec![0u8; COPY_CHUNK];
    let result = loop {
        if data.len() >= limit {
            // One more byte tells "exactly at the limit" from "more".
            let mut probe = [0u8; 1];
            break sys
                .read_at(&mut file, data.len() as u64, &mut probe)
                .map(|n| n == 0);
        }
        let want = chunk.len().min(limit - data.len());
        match sys.read_at(&mut file, data.len() as u64, &mut chunk[..want]) {
            Ok(0) => break Ok(true),
            Ok(n) => data.extend_from_slice(&chunk[..n.min(want)]),
            Err(e) => break Err(e),
        }
    };
    // Close even after a failed read so the kernel's handle is released.
    let closed = sys.close(file);
    let complete = result?;
    closed?;
    Ok((data, complete))
}

fn copy_file<S: System>(sys: &mut S, src: &str, dst: &str) -> Result<(), SysError> {
    let mut from = sys.open(src, OpenMode::Read)?;
    let mut to = match sys.open(dst, OpenMode::Replace) {
        Ok(f) => f,
        Err(e) => {
            let _ = sys.close(from);
            return Err(e);
        }
    };
    let mut chunk = vec![0u8; COPY_CHUNK];
    let mut offset = 0u64;
    let result = loop {
        match sys.read_at(&mut from, offset, &mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                let n = n.min(chunk.len());
                if let Err(e) = sys.write_at(&mut to, offset, &chunk[..n]) {
                    break Err(e);
                }
                offset += n as u64;
            }
            Err(e) => break Err(e),
        }
    };
    let closed_from = sys.close(from);
    let closed_to = sys.close(to);
    result?;
    closed_to?;
    closed_from
}

/// Depth bound for `rm -r`: a cycle or an absurd tree ends with an error,
/// not a kernel stack overflow.
const MAX_DEPTH: usize = 64;

fn remove_tree<S: System>(sys: &mut S, path: &str, depth: usize) -> Result<(), SysError> {
    if depth > MAX_DEPTH {
        return Err(SysError::InvalidInput);
    }
    for entry in sys.list_dir(path)? {
        let child = format!("{path}/{}", entry.name);
        if entry.stat.kind == FileKind::Directory {
            remove_tree(sys, &child, depth + 1)?;
        } else {
            sys.remove(&child)?;
        }
    }
    sys.remove(path)
}

fn entry_line(out: &mut String, name: &str, stat: &keel_mgmt::system::FileStat, long: bool) {
    if !long {
        let slash = if stat.kind == FileKind::Directory {
            "/"
        } else {
            ""
        };
        let _ = writeln!(out, "{name}{slash}");
        return;
    }
    let kind = match stat.kind {
        FileKind::File => '-',
        FileKind::Directory => 'd',
        FileKind::Symlink => 'l',
        FileKind::Other => '?',
    };
    let mut perms = String::new();
    for shift in [6, 3, 0] {
        let bits = (stat.mode >> shift) & 7;
        perms.push(if bits & 4 != 0 { 'r' } else { '-' });
        perms.push(if bits & 2 != 0 { 'w' } else { '-' });
        perms.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let date = if stat.modified >= 0 {
        let s = rfc3339(stat.modified as u64 * 1_000_000_000);
        // "2026-11-25T00:06:36Z" -> "2026-11-25 00:06"
        format!("{} {}", &s[..10], &s[11..16])
    } else {
        "-".to_string()
    };
    let _ = writeln!(out, "{kind}{perms} {:>10} {date} {name}", stat.size);
}

/// Bytes as a short human figure: 512B, 1.5K, 20M, 3.2G. Integer
/// arithmetic, so the kernel never needs floating point for it.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut unit = 0;
    let mut div: u64 = 1;
    while n / div >= 1024 && unit + 1 < UNITS.len() {
        div *= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{n}B");
    }
    // Tenths, rounded to nearest.
    let tenths = (n as u128 * 10 + div as u128 / 2) / div as u128;
    if tenths < 100 {
        format!("{}.{}{}", tenths / 10, tenths % 10, UNITS[unit])
    } else {
        format!("{}{}", (tenths + 5) / 10, UNITS[unit])
    }
}

/// Nanoseconds as `2 days, 3:04:05` or `3:04:05`.
pub fn duration(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let hms = format!("{}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60);
    match days {
        0 => hms,
        1 => format!("1 day, {hms}"),
        d => format!("{d} days, {hms}"),
    }
}

fn df<S: System>(sys: &mut S, out: &mut Output) {
    let _ = writeln!(
        out.stdout,
        "{:<20} {:<8} {:>8} {:>8} {:>8} {:>5} Mounted on",
        "Filesystem", "Type", "Size", "Used", "Avail", "Use%"
    );
    for fs in sys.fs_usage() {
        let used = fs.total.saturating_sub(fs.free);
        let pct = (used as u128 * 100)
            .checked_div(fs.total as u128)
            .unwrap_or(0);
        let _ = writeln!(
            out.stdout,
            "{:<20} {:<8} {:>8} {:>8} {:>8} {:>4}% {}",
            fs.source,
            fs.filesystem,
            bytes(fs.total),
            bytes(used),
            bytes(fs.available),
            pct,
            fs.mountpoint
        );
    }
}

fn free<S: System>(sys: &mut S, out: &mut Output) {
    let m = sys.memory();
    let used = m.total.saturating_sub(m.free);
    let _ = writeln!(
        out.stdout,
        "{:<6} {:>14} {:>14} {:>14}",
        "", "total", "used", "free"
    );
    let _ = writeln!(
        out.stdout,
        "{:<6} {:>14} {:>14} {:>14}",
        "Mem:", m.total, used, m.free
    );
    let _ = writeln!(
        out.stdout,
        "{:<6} {:>14} {:>14} {:>14}",
        "",
        bytes(m.total),
        bytes(used),
        bytes(m.free)
    );
}

fn thread_table<'a>(
    out: &mut String,
    rows: impl Iterator<Item = (&'a keel_mgmt::system::ThreadInfo, u64, u64)>,
) {
    let _ = writeln!(
        out,
        "{:>6} {:<9} {:>3} {:>6} {:>12}  NAME",
        "ID", "STATE", "CPU", "CPU%", "TIME"
    );
    for (t, used, interval) in rows {
        let state = match t.state {
            ThreadState::Running => "running",
            ThreadState::Runnable => "runnable",
            ThreadState::Waiting => "waiting",
            ThreadState::Dead => "dead",
        };
        // Tenths of a percent in integers: exact and no float formatting
        // surprises. One thread can use at most one CPU, so this is <= 100%.
        let permille = (used as u128 * 1000 / interval.max(1) as u128).min(1000);
        let _ = writeln!(
            out,
            "{:>6} {:<9} {:>3} {:>4}.{} {:>12}  {}",
            t.id,
            state,
            t.cpu,
            permille / 10,
            permille % 10,
            cpu_time(t.cpu_time_ns),
            t.name
        );
    }
}

/// CPU time as `m:ss.cc`.
fn cpu_time(ns: u64) -> String {
    let cs = ns / 10_000_000;
    format!("{}:{:02}.{:02}", cs / 6000, cs / 100 % 60, cs % 100)
}

fn ps<S: System>(sys: &mut S, out: &mut Output) {
    let up = sys.uptime_ns();
    let threads = sys.threads();
    thread_table(
        &mut out.stdout,
        threads.iter().map(|t| (t, t.cpu_time_ns, up)),
    );
}

fn ifconfig<S: System>(sys: &mut S, out: &mut Output) {
    for i in sys.interfaces() {
        let _ = writeln!(
            out.stdout,
            "{}: {} mtu {}",
            i.name,
            if i.up { "UP" } else { "DOWN" },
            i.mtu
        );
        if !i.mac.is_empty() {
            let _ = writeln!(out.stdout, "        ether {}", i.mac);
        }
        for a in &i.addresses {
            let family = if a.address.is_ipv4() { "inet" } else { "inet6" };
            let _ = writeln!(
                out.stdout,
                "        {family} {}/{}",
                a.address, a.prefix_len
            );
        }
        let _ = writeln!(
            out.stdout,
            "        RX packets {} bytes {}\n        TX packets {} bytes {}",
            i.rx_packets, i.rx_bytes, i.tx_packets, i.tx_bytes
        );
    }
}

fn ip<S: System>(sys: &mut S, args: &[&str], out: &mut Output) {
    let what = args.first().copied().unwrap_or("addr");
    if "addr".starts_with(what) || "address".starts_with(what) {
        for (n, i) in sys.interfaces().iter().enumerate() {
            let _ = writeln!(
                out.stdout,
                "{}: {}: mtu {} state {}",
                n + 1,
                i.name,
                i.mtu,
                if i.up { "UP" } else { "DOWN" }
            );
            if !i.mac.is_empty() {
                let _ = writeln!(out.stdout, "    link/ether {}", i.mac);
            }
            for a in &i.addresses {
                let family = if a.address.is_ipv4() { "inet" } else { "inet6" };
                let _ = writeln!(out.stdout, "    {family} {}/{}", a.address, a.prefix_len);
            }
        }
    } else if "route".starts_with(what) {
        for r in sys.routes() {
            if r.prefix_len == 0 {
                out.stdout.push_str("default");
            } else {
                let _ = write!(out.stdout, "{}/{}", r.destination, r.prefix_len);
            }
            if let Some(gw) = r.gateway {
                let _ = write!(out.stdout, " via {gw}");
            }
            let _ = writeln!(out.stdout, " dev {}", r.interface);
        }
    } else if "link".starts_with(what) {
        for (n, i) in sys.interfaces().iter().enumerate() {
            let _ = writeln!(
                out.stdout,
                "{}: {}: mtu {} state {} {}",
                n + 1,
                i.name,
                i.mtu,
                if i.up { "UP" } else { "DOWN" },
                i.mac
            );
        }
    } else {
        out.fail(2, format_args!("usage: ip [addr|route|link]"));
    }
}

fn netstat<S: System>(sys: &mut S, out: &mut Output) {
    let s = sys.socket_stats();
    let _ = writeln!(
        out.stdout,
        "tcp: {} listening, {} established, {} other\nudp: {}\nunix: {}",
        s.tcp_listen, s.tcp_established, s.tcp_other, s.udp, s.unix
    );
}

fn export<S: System>(sys: &mut S, args: &[&str], out: &mut Output) {
    if args.is_empty() {
        out.fail(2, format_args!("usage: export NAME=VALUE..."));
    }
    for arg in args {
        let Some((name, value)) = arg.split_once('=') else {
            out.fail(2, format_args!("export: {arg}: expected NAME=VALUE"));
            continue;
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            out.fail(1, format_args!("export: {name}: not a valid variable name"));
            continue;
        }
        if let Err(e) = sys.env_set(name, value) {
            out.fail(1, format_args!("export: {name}: {e}"));
        }
    }
}

fn apps<S: System>(sys: &mut S, out: &mut Output) {
    let _ = writeln!(out.stdout, "{:>4} {:<16} COMMAND", "ID", "STATE");
    for a in sys.apps() {
        let state = match a.state {
            AppState::Running => "running".to_string(),
            AppState::Exited { code } => format!("exited {code}"),
            AppState::Killed { signal } => format!("killed {}", signal_name(signal)),
        };
        let _ = writeln!(out.stdout, "{:>4} {:<16} {}", a.id, state, a.argv.join(" "));
    }
}

fn logs<S: System>(sys: &mut S, args: &[&str], out: &mut Output) {
    let Some(Ok(id)) = args.first().map(|a| a.parse::<u64>()) else {
        out.fail(2, format_args!("usage: logs ID"));
        return;
    };
    for (stream, sink) in [(LogStream::Stdout, 0), (LogStream::Stderr, 1)] {
        match sys.app_log(id, stream, 64 * 1024) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let target = if sink == 0 {
                    &mut out.stdout
                } else {
                    &mut out.stderr
                };
                target.push_str(&text);
                if !text.is_empty() && !text.ends_with('\n') {
                    target.push('\n');
                }
            }
            Err(e) => {
                out.fail(1, format_args!("logs: app {id}: {e}"));
                return;
            }
        }
    }
}

/// Signal names `kill` accepts, with their Linux numbers (the same on all
/// three architectures for these).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("KILL", 9),
    ("USR1", 10),
    ("USR2", 12),
    ("TERM", 15),
    ("CONT", 18),
    ("STOP", 19),
];

fn signal_name(n: i32) -> String {
    SIGNALS
        .iter()
        .find(|(_, v)| *v == n)
        .map_or_else(|| n.to_string(), |(name, _)| format!("SIG{name}"))
}

fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = s.strip_prefix("SIG").unwrap_or(s);
    SIGNALS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

fn kill<S: System>(sys: &mut S, args: &[&str], out: &mut Output) {
    let (signal, ids) = match args.first() {
        Some(flag) if flag.starts_with('-') => match parse_signal(&flag[1..]) {
            Some(sig) => (sig, &args[1..]),
            None => {
                out.fail(2, format_args!("kill: {flag}: unknown signal"));
                return;
            }
        },
        _ => (15, args),
    };
    if ids.is_empty() {
        out.fail(2, format_args!("usage: kill [-SIGNAL] ID..."));
    }
    for arg in ids {
        let Ok(id) = arg.parse::<u64>() else {
            out.fail(2, format_args!("kill: {arg}: not an app id (see 'apps')"));
            continue;
        };
        match sys.app_signal(id, signal) {
            Ok(()) => {}
            Err(SysError::Conflict) => {
                out.fail(1, format_args!("kill: app {id} has already ended"))
            }
            Err(SysError::NotFound) => out.fail(1, format_args!("kill: app {id}: no such app")),
            Err(e) => out.fail(1, format_args!("kill: app {id}: {e}")),
        }
    }
}

fn power<S: System>(sys: &mut S, action: PowerAction, name: &str, out: &mut Output) {
    match sys.power(action) {
        Ok(()) => {
            let _ = writeln!(out.stdout, "{name}: going down now");
        }
        Err(e) => out.fail(1, format_args!("{name}: {e}")),
    }
}
