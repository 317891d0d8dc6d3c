//! The namespace: one root, filesystems mounted on directories, and path
//! resolution with `.`/`..`, symbolic links and mount crossing.
//!
//! Paths are handled as absolute, canonical strings: a relative path is
//! joined to the directory it is relative to, and resolution walks from the
//! root keeping the chain of directories, so `..` needs no parent pointers.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_core::sync::SpinLock;

use crate::error::{FsError, FsResult};
use crate::node::{FileType, Inode};

/// Longest path accepted (PATH_MAX).
pub const PATH_MAX: usize = 4096;
/// Longest name accepted (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Symbolic links followed in one resolution before ELOOP.
const MAX_SYMLINKS: usize = 40;

/// Whether a final symbolic link is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Follow it (stat, open).
    Follow,
    /// Return the link itself (lstat, readlink, O_NOFOLLOW).
    NoFollow,
}

/// A resolved path: the object and its canonical absolute path.
#[derive(Clone)]
pub struct Resolved {
    /// The object.
    pub inode: Arc<dyn Inode>,
    /// Canonical absolute path (symlinks resolved except maybe the last).
    pub path: String,
}

struct Mount {
    at: (u64, u64),
    path: String,
    root: Arc<dyn Inode>,
    fs_name: &'static str,
}

/// The namespace.
pub struct Vfs {
    root: Arc<dyn Inode>,
    root_fs_name: &'static str,
    mounts: SpinLock<Vec<Mount>>,
}

fn key(i: &Arc<dyn Inode>) -> (u64, u64) {
    let m = i.metadata();
    (m.dev, m.ino)
}

/// Split into components, dropping empty ones and ".".
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// `base` joined with `path` (absolute `path` wins).
pub fn join(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else if base.ends_with('/') {
        alloc::format!("{base}{path}")
    } else {
        alloc::format!("{base}/{path}")
    }
}

impl Vfs {
    /// A namespace whose root is `root`.
    pub fn new(root: Arc<dyn Inode>, root_fs_name: &'static str) -> Self {
        Self {
            root,
            root_fs_name,
            mounts: SpinLock::new(Vec::new()),
        }
    }

    /// The root as a `Resolved`.
    pub fn root(&self) -> Resolved {
        Resolved {
            inode: self.root.clone(),
            path: "/".into(),
        }
    }

    /// Mount `fs_root` on the existing directory `path`.
    pub fn mount(
        &self,
        path: &str,
        fs_root: Arc<dyn Inode>,
        fs_name: &'static str,
    ) -> FsResult<()> {
        let at = self.resolve(&self.root(), path, Lookup::Follow)?;
        if at.inode.metadata().file_type() != FileType::Directory {
            return Err(FsError::NotDir);
        }
        self.mounts.lock().push(Mount {
            at: key(&at.inode),
            path: at.path,
            root: fs_root,
            fs_name,
        });
        Ok(())
    }

    /// (mount point, filesystem name) of every mount, root first.
    pub fn mount_list(&self) -> Vec<(String, &'static str)> {
        let mut list = alloc::vec![("/".to_string(), self.root_fs_name)];
        list.extend(
            self.mounts
                .lock()
                .iter()
                .map(|m| (m.path.clone(), m.fs_name)),
        );
        list
    }

    fn crossed(&self, inode: Arc<dyn Inode>) -> Arc<dyn Inode> {
        let k = key(&inode);
        match self.mounts.lock().iter().find(|m| m.at == k) {
            Some(m) => m.root.clone(),
            None => inode,
        }
    }

    /// Resolve `path` relative to `base` (a directory).
    pub fn resolve(&self, base: &Resolved, path: &str, last: Lookup) -> FsResult<Resolved> {
        if path.is_empty() {
            return Err(FsError::NotFound);
        }
        if path.len() > PATH_MAX {
            return Err(FsError::NameTooLong);
        }
        let full = join(&base.path, path);
        let mut symlinks = 0;
        self.walk(&full, last, &mut symlinks)
    }

    fn walk(&self, full: &str, last: Lookup, symlinks: &mut usize) -> FsResult<Resolved> {
        // Stack of (directory, name) from the root; the root has no name.
        let mut stack: Vec<(Arc<dyn Inode>, String)> =
            alloc::vec![(self.root.clone(), String::new())];
        let parts: Vec<&str> = components(full).collect();
        let trailing_slash = full.len() > 1 && full.ends_with('/');
        for (i, part) in parts.iter().enumerate() {
            let is_last = i + 1 == parts.len();
            if *part == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            if part.len() > NAME_MAX {
                return Err(FsError::NameTooLong);
            }
            let dir = &stack.last().expect("stack holds the root").0;
            if dir.metadata().file_type() != FileType::Directory {
                return Err(FsError::NotDir);
            }
            let child = self.crossed(dir.lookup(part)?);
            let kind = child.metadata().file_type();
            let follow = !is_last || last == Lookup::Follow || trailing_slash;
            if kind == FileType::Symlink && follow {
                *symlinks += 1;
                if *symlinks > MAX_SYMLINKS {
                    return Err(FsError::Loop);
                }
                let target = child.readlink()?;
                let here = path_of(&stack);
                let rest: Vec<&str> = parts[i + 1..].to_vec();
                let mut next = join(&here, &target);
                for r in rest {
                    next.push('/');
                    next.push_str(r);
                }
                if trailing_slash {
                    next.push('/');
                }
                return self.walk(&next, last, symlinks);
            }
            stack.push((child, (*part).to_string()));
        }
        let (inode, _) = stack.last().cloned().expect("stack holds the root");
        if trailing_slash && inode.metadata().file_type() != FileType::Directory {
            return Err(FsError::NotDir);
        }
        Ok(Resolved {
            inode,
            path: path_of(&stack),
        })
    }

    /// Resolve all but the last component of `path` (which must be a
    /// plain name) to a directory; returns it with the name.
    pub fn resolve_parent(&self, base: &Resolved, path: &str) -> FsResult<(Resolved, String)> {
        if path.is_empty() {
            return Err(FsError::NotFound);
        }
        if path.len() > PATH_MAX {
            return Err(FsError::NameTooLong);
        }
        let full = join(&base.path, path);
        let trimmed = full.trim_end_matches('/');
        let (dir_path, name) = match trimmed.rsplit_once('/') {
            Some((d, n)) => (if d.is_empty() { "/" } else { d }, n),
            None => ("/", trimmed),
        };
        if name.is_empty() || name == "." || name == ".." {
            // The root itself, or "dir/." / "dir/..": never a plain name.
            return Err(if name.is_empty() {
                FsError::Busy
            } else {
                FsError::Invalid
            });
        }
        if name.len() > NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        let dir = self.resolve(&self.root(), dir_path, Lookup::Follow)?;
        if dir.inode.metadata().file_type() != FileType::Directory {
            return Err(FsError::NotDir);
        }
        Ok((dir, name.to_string()))
    }
}

fn path_of(stack: &[(Arc<dyn Inode>, String)]) -> String {
    if stack.len() == 1 {
        return "/".into();
    }
    let mut p = String::new();
    for (_, name) in &stack[1..] {
        p.push('/');
        p.push_str(name);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_and_components() {
        assert_eq!(join("/a/b", "c/d"), "/a/b/c/d");
        assert_eq!(join("/", "c"), "/c");
        assert_eq!(join("/a", "/x"), "/x");
        assert_eq!(
            components("//a/./b//c/").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }
}
