//! File system calls, by theme: data I/O, metadata, names, descriptor
//! control.

mod control;
mod io;
mod meta;
mod names;

pub use control::*;
pub(crate) use io::iovecs;
pub use io::*;
pub use meta::*;
pub use names::*;

use alloc::sync::Arc;

use keel_fs::FileLike;

use crate::errno::Errno;
use crate::process;

/// The open file behind descriptor `fd`.
fn file(fd: i64) -> Result<Arc<dyn FileLike>, Errno> {
    process::get().fds.lock().file(fd)
}
