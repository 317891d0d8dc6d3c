//! The file descriptor table.

use alloc::sync::Arc;
use alloc::vec::Vec;

use keel_fs::FileLike;

use crate::errno::Errno;

/// One open descriptor.
#[derive(Clone)]
pub struct Fd {
    /// The open file description (shared by dup'd descriptors).
    pub file: Arc<dyn FileLike>,
    /// FD_CLOEXEC.
    pub cloexec: bool,
}

/// Descriptors of the process.
pub struct FdTable {
    slots: Vec<Option<Fd>>,
    /// RLIMIT_NOFILE.
    pub limit: usize,
}

impl Default for FdTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FdTable {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            slots: Vec::new(),
            limit: 1024,
        }
    }

    /// The descriptor `fd`.
    pub fn get(&self, fd: i64) -> Result<&Fd, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
            .ok_or(Errno::EBADF)
    }

    /// The file of descriptor `fd`.
    pub fn file(&self, fd: i64) -> Result<Arc<dyn FileLike>, Errno> {
        self.get(fd).map(|f| f.file.clone())
    }

    /// Install at the lowest free number ≥ `min`.
    pub fn insert_from(&mut self, min: usize, fd: Fd) -> Result<usize, Errno> {
        let start = min.min(self.slots.len());
        let index = (start..self.slots.len())
            .find(|&i| self.slots[i].is_none() && i >= min)
            .unwrap_or(self.slots.len().max(min));
        if index >= self.limit {
            return Err(Errno::EMFILE);
        }
        if index >= self.slots.len() {
            self.slots.resize(index + 1, None);
        }
        self.slots[index] = Some(fd);
        Ok(index)
    }

    /// Install at the lowest free number.
    pub fn insert(&mut self, fd: Fd) -> Result<usize, Errno> {
        self.insert_from(0, fd)
    }

    /// Install at exactly `index`, returning what was there.
    pub fn put(&mut self, index: usize, fd: Fd) -> Result<Option<Fd>, Errno> {
        if index >= self.limit {
            return Err(Errno::EBADF);
        }
        if index >= self.slots.len() {
            self.slots.resize(index + 1, None);
        }
        Ok(self.slots[index].replace(fd))
    }

    /// Remove `fd`.
    pub fn remove(&mut self, fd: i64) -> Result<Fd, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::take)
            .ok_or(Errno::EBADF)
    }

    /// Set FD_CLOEXEC.
    pub fn set_cloexec(&mut self, fd: i64, on: bool) -> Result<(), Errno> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or(Errno::EBADF)?;
        slot.cloexec = on;
        Ok(())
    }

    /// (number, descriptor) of every open descriptor.
    pub fn list(&self) -> Vec<(usize, Fd)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.clone().map(|f| (i, f)))
            .collect()
    }
}
