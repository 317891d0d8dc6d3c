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
    /// `keel.net.*` options as (name, value), checked by the network stack
    /// when it starts (it knows what they mean; see docs/networking.md).
    pub net: Vec<(String, String)>,
    /// App argv: every word after `--`.
    pub app_args: Vec<String>,
    /// Problems found, one human-readable line each.
    pub problems: Vec<String>,
}

const KNOWN: &[&str] = &["keel.test", "keel.test.after", "keel.tsc_khz"];

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
    fn empty_and_garbage_lines_are_harmless() {
        assert_eq!(parse(""), BootOptions::default());
        let o = parse("\"unterminated keel.test=x");
        assert_eq!(o.test, None);
        assert_eq!(split_words("  a  \"b c\"d  "), ["a", "b cd"]);
    }
}
