//! Memory system calls over the app's address space: mmap and friends,
//! brk, and the queries (mincore).

use alloc::sync::Arc;

use keel_core::app::SPACE;
use keel_core::memory::PAGE_SIZE;
use keel_core::memory::app_space::{
    Backing, MapRequestError, PROT_EXEC, PROT_READ, PROT_WRITE, Vma,
};
use keel_fs::FileLike;

use super::Call;
use crate::errno::{Errno, SysResult};
use crate::{mem, process};

const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;
const MAP_DENYWRITE: u64 = 0x800;
const MAP_EXECUTABLE: u64 = 0x1000;
const MAP_POPULATE: u64 = 0x8000;
const MAP_NONBLOCK: u64 = 0x10000;
const MAP_STACK: u64 = 0x20000;
const MAP_HUGETLB: u64 = 0x40000;
const MAP_FIXED_NOREPLACE: u64 = 0x100000;

fn map_error(e: MapRequestError) -> Errno {
    match e {
        MapRequestError::NoSpace | MapRequestError::NotMapped => Errno::ENOMEM,
        MapRequestError::Exists => Errno::EEXIST,
        MapRequestError::Invalid => Errno::EINVAL,
    }
}

fn prot_bits(prot: u64) -> Result<u8, Errno> {
    if prot & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(prot as u8 & (PROT_READ | PROT_WRITE | PROT_EXEC))
}

fn aligned(addr: u64) -> Result<usize, Errno> {
    if !addr.is_multiple_of(PAGE_SIZE as u64) {
        Err(Errno::EINVAL)
    } else {
        Ok(addr as usize)
    }
}

/// What a file mapping maps: its pages, or anonymous memory for /dev/zero.
fn file_backing(
    f: &Arc<dyn FileLike>,
    offset: u64,
    shared: bool,
    prot: u8,
) -> Result<Backing, Errno> {
    let (readable, writable) = f.access();
    if !readable || (shared && prot & PROT_WRITE != 0 && !writable) {
        return Err(Errno::EACCES);
    }
    if f.path() == "/dev/zero" {
        return Ok(Backing::Anonymous);
    }
    let object = f.inode().and_then(|i| i.mappable()).ok_or(Errno::ENODEV)?;
    Ok(Backing::File { object, offset })
}

/// mmap(2).
pub fn mmap(c: &mut Call<'_>) -> SysResult {
    let (addr, len, flags, fd, offset) = (
        c.args[0],
        c.args[1] as usize,
        c.args[3],
        c.int(4),
        c.args[5],
    );
    let prot = prot_bits(c.args[2])?;
    let known = MAP_SHARED_VALIDATE
        | MAP_FIXED
        | MAP_ANONYMOUS
        | MAP_GROWSDOWN
        | MAP_DENYWRITE
        | MAP_EXECUTABLE
        | u64::from(c.abi.map_locked)
        | u64::from(c.abi.map_noreserve)
        | MAP_POPULATE
        | MAP_NONBLOCK
        | MAP_STACK
        | MAP_HUGETLB
        | MAP_FIXED_NOREPLACE;
    let kind = flags & MAP_SHARED_VALIDATE;
    if len == 0 || kind == 0 || offset % PAGE_SIZE as u64 != 0 || flags & MAP_HUGETLB != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & !known != 0 && kind == MAP_SHARED_VALIDATE {
        return Err(Errno::EOPNOTSUPP);
    }
    let shared = kind != MAP_PRIVATE;
    let (backing, label) = if flags & MAP_ANONYMOUS != 0 {
        (Backing::Anonymous, None)
    } else {
        let f = process::get().fds.lock().file(fd)?;
        (
            file_backing(&f, offset, shared, prot)?,
            Some(alloc::borrow::Cow::Owned(f.path())),
        )
    };
    let vma = Vma {
        start: 0,
        end: 0,
        prot,
        shared,
        backing,
        label,
    };
    let placed = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        let at = aligned(addr)?;
        SPACE
            .map(Some(at), len, vma, flags & MAP_FIXED_NOREPLACE == 0)
            .map_err(map_error)?
    } else if addr != 0 && addr % PAGE_SIZE as u64 == 0 {
        // A hint: used if that range is free, else anywhere.
        match SPACE.map(Some(addr as usize), len, vma.clone(), false) {
            Ok(at) => at,
            Err(_) => SPACE.map(None, len, vma, false).map_err(map_error)?,
        }
    } else {
        SPACE.map(None, len, vma, false).map_err(map_error)?
    };
    Ok(placed as isize)
}

/// munmap(2).
pub fn munmap(c: &mut Call<'_>) -> SysResult {
    let addr = aligned(c.args[0])?;
    SPACE.unmap(addr, c.args[1] as usize).map_err(map_error)?;
    Ok(0)
}

/// mprotect(2).
pub fn mprotect(c: &mut Call<'_>) -> SysResult {
    let addr = aligned(c.args[0])?;
    let prot = prot_bits(c.args[2])?;
    if c.args[1] == 0 {
        return Ok(0);
    }
    SPACE
        .protect(addr, c.args[1] as usize, prot)
        .map_err(map_error)?;
    Ok(0)
}

/// mremap(2).
pub fn mremap(c: &mut Call<'_>) -> SysResult {
    const MREMAP_MAYMOVE: u64 = 1;
    const MREMAP_FIXED: u64 = 2;
    let (old, old_len, new_len, flags) = (
        aligned(c.args[0])?,
        c.args[1] as usize,
        c.args[2] as usize,
        c.args[3],
    );
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED) != 0
        || (flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0)
    {
        return Err(Errno::EINVAL); // includes MREMAP_DONTUNMAP
    }
    if old_len == 0 {
        return Err(Errno::EINVAL); // duplicating a shared mapping is not supported
    }
    let fixed = if flags & MREMAP_FIXED != 0 {
        Some(aligned(c.args[4])?)
    } else {
        None
    };
    let at = SPACE
        .remap(old, old_len, new_len, flags & MREMAP_MAYMOVE != 0, fixed)
        .map_err(map_error)?;
    Ok(at as isize)
}

/// madvise(2).
pub fn madvise(c: &mut Call<'_>) -> SysResult {
    const MADV_DONTNEED: u64 = 4;
    const MADV_FREE: u64 = 8;
    let addr = aligned(c.args[0])?;
    let len = c.args[1] as usize;
    match c.args[2] {
        MADV_DONTNEED | MADV_FREE => {
            if len > 0 {
                SPACE.discard(addr, len).map_err(map_error)?;
            }
            Ok(0)
        }
        // Access-pattern, huge-page, dump, fork and reclaim advice: hints
        // with nothing to act on here (no swap, no fork, no dumps).
        0..=3 | 10..=23 => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// brk(2).
pub fn brk(c: &mut Call<'_>) -> SysResult {
    Ok(SPACE.set_brk(c.args[0] as usize) as isize)
}

/// mincore(2).
pub fn mincore(c: &mut Call<'_>) -> SysResult {
    let addr = aligned(c.args[0])?;
    let resident = SPACE
        .resident(addr, c.args[1] as usize)
        .map_err(map_error)?;
    let bytes: alloc::vec::Vec<u8> = resident.into_iter().map(u8::from).collect();
    mem::write_bytes(c.args[2], &bytes)?;
    Ok(0)
}

/// msync(2): shared file mappings map the file's own pages, so the file
/// already holds every write; what remains is making the file durable.
pub fn msync(c: &mut Call<'_>) -> SysResult {
    const MS_ASYNC: u64 = 1;
    const MS_INVALIDATE: u64 = 2;
    const MS_SYNC: u64 = 4;
    let flags = c.args[2];
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
    {
        return Err(Errno::EINVAL);
    }
    let addr = aligned(c.args[0])?;
    SPACE
        .resident(addr, c.args[1] as usize)
        .map_err(map_error)?;
    Ok(0)
}

/// mlock(2), munlock(2): Keel never pages app memory out, so every page is
/// as good as locked; the range must be mapped.
pub fn mlock(c: &mut Call<'_>) -> SysResult {
    let start = c.args[0] as usize & !(PAGE_SIZE - 1);
    let len = (c.args[0] as usize - start)
        .checked_add(c.args[1] as usize)
        .ok_or(Errno::EINVAL)?;
    if len > 0 {
        SPACE.resident(start, len).map_err(map_error)?;
    }
    Ok(0)
}
