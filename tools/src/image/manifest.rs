//! The image manifest: one entry per line, `KIND GUEST [SOURCE] [key=value…]`
//! (see docs/zfs-image.md). Host paths are relative to the manifest.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::spec::{Entry, ImageSpec, Source, guest_path};

/// Parse a manifest file into `spec`.
pub fn load(path: &Path, spec: &mut ImageSpec) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, base, &path.display().to_string(), spec)
}

/// Parse manifest `text`; host paths are relative to `base`.
pub fn parse(text: &str, base: &Path, name: &str, spec: &mut ImageSpec) -> Result<()> {
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{name}:{}", n + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let (positional, options): (Vec<&str>, Vec<&str>) =
            words.iter().partition(|w| !w.contains('='));
        let kind = positional[0];
        let Some(guest) = positional.get(1) else {
            bail!("{at}: '{line}' needs a guest path after '{kind}'");
        };
        let arg = positional.get(2).copied();
        let host = |arg: Option<&str>, what: &str| -> Result<std::path::PathBuf> {
            let a = arg.with_context(|| format!("{at}: '{kind} {guest}' needs {what}"))?;
            Ok(base.join(a))
        };
        let source = match kind {
            "file" => Source::File(host(arg, "a host file after the guest path")?),
            "tree" => Source::Tree(host(arg, "a host directory after the guest path")?),
            "dir" => Source::Directory,
            "symlink" => Source::Symlink(
                arg.with_context(|| format!("{at}: 'symlink {guest}' needs a target"))?
                    .to_string(),
            ),
            "hardlink" => Source::HardLink(
                arg.with_context(|| {
                    format!("{at}: 'hardlink {guest}' needs the guest path it links to")
                })?
                .to_string(),
            ),
            other => bail!("{at}: unknown kind '{other}' (file, tree, dir, symlink or hardlink)"),
        };
        if positional.len() > 3 || (matches!(kind, "dir") && positional.len() > 2) {
            bail!("{at}: too many words in '{line}' (options are key=value)");
        }
        let mut entry = Entry {
            guest: guest_path(guest).with_context(|| at.clone())?,
            source,
            mode: None,
            uid: None,
            gid: None,
            origin: at.clone(),
        };
        for opt in options {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            match k {
                "mode" => {
                    entry.mode = Some(
                        u32::from_str_radix(v.trim_start_matches("0o"), 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .with_context(|| format!("{at}: mode '{v}' is not octal like 0755"))?,
                    )
                }
                "uid" => {
                    entry.uid = Some(
                        v.parse()
                            .with_context(|| format!("{at}: uid '{v}' is not a number"))?,
                    )
                }
                "gid" => {
                    entry.gid = Some(
                        v.parse()
                            .with_context(|| format!("{at}: gid '{v}' is not a number"))?,
                    )
                }
                other => bail!("{at}: unknown option '{other}' (mode, uid or gid)"),
            }
        }
        spec.push(entry);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_option() {
        let text = "# app image\n\
                    file /usr/bin/app build/app mode=0755\n\
                    dir /var/lib/app mode=0700 uid=1000 gid=1000\n\
                    symlink /lib64/ld.so /lib/x86_64-linux-gnu/ld.so\n\
                    hardlink /usr/bin/app2 /usr/bin/app\n\
                    tree /srv/www public\n";
        let mut spec = ImageSpec::default();
        parse(text, Path::new("/m"), "m", &mut spec).unwrap();
        assert_eq!(spec.entries.len(), 5);
        assert_eq!(spec.entries[0].source, Source::File("/m/build/app".into()));
        assert_eq!(spec.entries[0].mode, Some(0o755));
        assert_eq!(
            (spec.entries[1].uid, spec.entries[1].gid),
            (Some(1000), Some(1000))
        );
        assert_eq!(
            spec.entries[2].source,
            Source::Symlink("/lib/x86_64-linux-gnu/ld.so".into())
        );
        assert_eq!(
            spec.entries[3].source,
            Source::HardLink("/usr/bin/app".into())
        );
        assert_eq!(spec.entries[4].source, Source::Tree("/m/public".into()));
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let mut spec = ImageSpec::default();
        let err = parse("\nfile /x\n", Path::new("."), "m", &mut spec).unwrap_err();
        assert!(format!("{err:#}").contains("m:2"), "{err:#}");
        let err = parse("dir /x mode=999\n", Path::new("."), "m", &mut spec).unwrap_err();
        assert!(format!("{err:#}").contains("octal"), "{err:#}");
        let err = parse("socket /x\n", Path::new("."), "m", &mut spec).unwrap_err();
        assert!(format!("{err:#}").contains("unknown kind"), "{err:#}");
    }
}
