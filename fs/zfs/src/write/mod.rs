//! Writing pools: creation, copy-on-write transaction groups, and the
//! ZPL operations (files, directories, symlinks, hard links, rename,
//! truncate, attributes) that change them.

pub mod alloc;
mod create;
mod file_data;
mod files;
pub mod io;
pub mod objset;
pub mod pool;
pub mod spacemaps;
pub mod tree;
pub mod zpl;

pub use create::metaslab_shift;
pub use io::DataFormat;
pub use pool::{CreateOptions, PoolWriter};
pub use zpl::NewKind;
