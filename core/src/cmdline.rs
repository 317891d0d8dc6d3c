//! The boot command line: `keel.*` options for the kernel, everything after
//! `--` for the app. Bad options are reported, never fatal.

use alloc::string::String;
use alloc::vec::Vec;

/// What the command line asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BootOptions {
    /// `keel.test=all` or a comma-separated list of name fragments.
    pub test: Option<String>,
    /// `keel.test.after=NAME`: run only the tests registered after NAME
    /// (the harness uses it to continue past a crashed test).
    pub test_after: Option<String>,
    /// `keel.tsc_khz=N`: the x86 TSC rate when the hypervisor does not
    /// report it (QEMU TCG), saving the boot-time calibration.
    pub tsc_khz: Option<u64>,
    /// `keel.root=`: where the root filesystem comes from.
    pub root: RootChoice,
    /// `keel.mount=vdX:/path[:ro]` (repeatable): pools mounted besides the
    /// root.
    pub mounts: Vec<DiskMount>,
    /// `keel.net.*` options as (name, value), checked by the network stack
    /// when it starts (it knows what they mean; see docs/networking.md).
    pub net: Vec<(String, String)>,
    /// App argv: every word after `--`.
    pub app_args: Vec<String>,
    /// Problems found, one human-readable line each.
    pub problems: Vec<String>,
}

/// Where the root filesystem comes from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum RootChoice {
    /// The first disk holding a ZFS pool, else a ramfs (the default).
    #[default]
    Auto,
    /// A ramfs filled from the initial ramdisk, even if a disk has a pool.
    Ram,
    /// The pool on this disk (`vda`, `vdb`, …), optionally read-only.
    Disk {
        /// Disk name.
        name: String,
        /// Mount it read-only.
        read_only: bool,
    },
}

impl RootChoice {
    /// Parse `auto`, `ram`, `vdX` or `vdX:ro`.
    pub fn parse(v: &str) -> Option<Self> {
        let (name, read_only) = match v.split_once(':') {
            Some((n, "ro")) => (n, true),
            Some((n, "rw")) => (n, false),
            Some(_) => return None,
            None => (v, false),
        };
        match name {
            "auto" if !read_only => Some(Self::Auto),
            "ram" if !read_only => Some(Self::Ram),
            n if n.len() > 2
                && n.starts_with("vd")
                && n[2..].bytes().all(|b| b.is_ascii_lowercase()) =>
            {
                Some(Self::Disk {
                    name: n.into(),
                    read_only,
                })
            }
            _ => None,
        }
    }
}

/// A pool on a disk mounted at a path (`keel.mount=vdb:/data:ro`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskMount {
    /// Disk name (`vdb`).
    pub disk: String,
    /// Absolute mount point.
    pub path: String,
    /// Mount it read-only.
    pub read_only: bool,
}

impl DiskMount {
    /// Parse `vdX:/path` or `vdX:/path:ro`.
    pub fn parse(v: &str) -> Option<Self> {
        let (disk, rest) = v.split_once(':')?;
        let (path, read_only) = match rest.rsplit_once(':') {
            Some((p, "ro")) => (p, true),
            Some((p, "rw")) => (p, false),
            Some(_) => return None,
            None => (rest, false),
        };
        let disk_ok = disk.len() > 2
            && disk.starts_with("vd")
            && disk[2..].bytes().all(|b| b.is_ascii_lowercase());
        let path_ok = path.starts_with('/') && path.len() > 1 && !path.contains("/../");
        (disk_ok && path_ok).then(|| Self {
            disk: disk.into(),
            path: path.into(),
            read_only,
        })
    }
}

const KNOWN: &[&str] = &[
    "keel.test",
    "keel.test.after",
    "keel.tsc_khz",
    "keel.root",
    "keel.mount",
];

/// Split on whitespace, keeping double-quoted stretches together.
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut in_word) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(core::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

static NET_OPTIONS: spin::Once<Vec<(String, String)>> = spin::Once::new();

/// Keep the `keel.net.*` options for the network stack (boot does this).
pub fn set_net_options(options: Vec<(String, String)>) {
    NET_OPTIONS.call_once(|| options);
}

/// The `keel.net.*` options of this boot (empty before boot recorded them,
/// as in host tests).
pub fn net_options() -> &'static [(String, String)] {
    NET_OPTIONS.get().map_or(&[], Vec::as_slice)
}

/// Parse a command line.
pub fn parse(line: &str) -> BootOptions {
    let mut opts = BootOptions::default();
    let mut words = split_words(line).into_iter();
    for word in words.by_ref() {
        if word == "--" {
            break;
        }
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word.as_str(), None),
        };
        if !key.starts_with("keel.") {
            continue; // options for someone else (e.g. a Linux-style console=)
        }
        match (key, value) {
            (k, v) if k.starts_with("keel.net.") => opts
                .net
                .push((k.into(), v.unwrap_or_default().into())),
            ("keel.test", Some(v)) if !v.is_empty() => opts.test = Some(v.into()),
            ("keel.test.after", Some(v)) if !v.is_empty() => opts.test_after = Some(v.into()),
            ("keel.tsc_khz", Some(v)) if !v.is_empty() => match v.parse::<u64>() {
                Ok(khz) if (1_000..=100_000_000).contains(&khz) => opts.tsc_khz = Some(khz),
                _ => opts.problems.push(alloc::format!(
                    "keel.tsc_khz={v} is not a TSC rate in kHz (1000..=100000000); calibrating instead"
                )),
            },
            ("keel.root", Some(v)) if !v.is_empty() => match RootChoice::parse(v) {
                Some(r) => opts.root = r,
                None => opts.problems.push(alloc::format!(
                    "keel.root={v} is not auto, ram, or a disk like vda or vda:ro; using auto"
                )),
            },
            ("keel.mount", Some(v)) if !v.is_empty() => match DiskMount::parse(v) {
                Some(m) => opts.mounts.push(m),
                None => opts.problems.push(alloc::format!(
                    "keel.mount={v} is not DISK:/PATH[:ro] (e.g. vdb:/data); not mounted"
                )),
            },
            (k, None) | (k, Some("")) if KNOWN.contains(&k) => opts
                .problems
                .push(alloc::format!("boot option {k} needs a value ({k}=...)")),
            (k, _) => opts.problems.push(alloc::format!(
                "unknown boot option {k} (known: {}); ignored",
                KNOWN.join(", ")
            )),
        }
    }
    opts.app_args = words.collect();
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keel_options_and_app_args() {
        let o = parse(
            "console=ttyS0 keel.test=all keel.test.after=core::a -- /bin/app -x \"two words\"",
        );
        assert_eq!(o.test.as_deref(), Some("all"));
        assert_eq!(o.test_after.as_deref(), Some("core::a"));
        assert_eq!(o.app_args, ["/bin/app", "-x", "two words"]);
        assert!(o.problems.is_empty());
    }

    #[test]
    fn reports_unknown_and_empty_options_without_failing() {
        let o = parse("keel.tset=all keel.test= keel.test");
        assert_eq!(o.test, None);
        assert_eq!(o.problems.len(), 3);
        assert!(o.problems[0].contains("unknown boot option keel.tset"));
        assert!(o.problems[1].contains("needs a value"));
    }

    #[test]
    fn network_options_are_collected_for_the_stack() {
        let o = parse("keel.net.ip=10.0.2.15/24 keel.net.dhcp -- app");
        assert_eq!(
            o.net,
            [
                ("keel.net.ip".into(), "10.0.2.15/24".into()),
                ("keel.net.dhcp".into(), String::new())
            ]
        );
        assert!(o.problems.is_empty());
    }

    #[test]
    fn tsc_rate_is_range_checked() {
        assert_eq!(parse("keel.tsc_khz=2600000").tsc_khz, Some(2_600_000));
        let o = parse("keel.tsc_khz=fast keel.tsc_khz=0");
        assert_eq!(o.tsc_khz, None);
        assert_eq!(o.problems.len(), 2);
    }

    #[test]
    fn root_choices_parse_and_bad_ones_fall_back_to_auto() {
        assert_eq!(parse("").root, RootChoice::Auto);
        assert_eq!(parse("keel.root=ram").root, RootChoice::Ram);
        assert_eq!(
            parse("keel.root=vdb:ro").root,
            RootChoice::Disk {
                name: "vdb".into(),
                read_only: true
            }
        );
        for bad in [
            "keel.root=sda",
            "keel.root=vda:rx",
            "keel.root=ram:ro",
            "keel.root=vd",
        ] {
            let o = parse(bad);
            assert_eq!(o.root, RootChoice::Auto, "{bad}");
            assert_eq!(o.problems.len(), 1, "{bad}");
        }
    }

    #[test]
    fn extra_mounts_parse_and_bad_ones_are_reported() {
        let o = parse("keel.mount=vdb:/data keel.mount=vdc:/srv/www:ro");
        assert_eq!(
            o.mounts,
            [
                DiskMount {
                    disk: "vdb".into(),
                    path: "/data".into(),
                    read_only: false
                },
                DiskMount {
                    disk: "vdc".into(),
                    path: "/srv/www".into(),
                    read_only: true
                }
            ]
        );
        for bad in [
            "keel.mount=vdb",
            "keel.mount=sdb:/x",
            "keel.mount=vdb:data",
            "keel.mount=vdb:/",
            "keel.mount=vdb:/x:rx",
        ] {
            let o = parse(bad);
            assert!(o.mounts.is_empty(), "{bad}");
            assert_eq!(o.problems.len(), 1, "{bad}");
        }
    }

    #[test]
    fn empty_and_garbage_lines_are_harmless() {
        assert_eq!(parse(""), BootOptions::default());
        let o = parse("\"unterminated keel.test=x");
        assert_eq!(o.test, None);
        assert_eq!(split_words("  a  \"b c\"d  "), ["a", "b cd"]);
    }
}
