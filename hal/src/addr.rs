//! Physical and virtual address newtypes, so the two are never mixed up.

use core::fmt;

/// A physical (guest-physical) address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PhysAddr(pub u64);

/// A virtual address in the single address space shared by kernel and app.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct VirtAddr(pub usize);

impl PhysAddr {
    /// The address as an integer.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
    /// This address plus `bytes`.
    pub const fn add(self, bytes: u64) -> Self {
        Self(self.0 + bytes)
    }
    /// Round down to a multiple of `align` (a power of two).
    pub const fn align_down(self, align: u64) -> Self {
        Self(self.0 & !(align - 1))
    }
    /// Round up to a multiple of `align` (a power of two).
    pub const fn align_up(self, align: u64) -> Self {
        Self((self.0 + align - 1) & !(align - 1))
    }
    /// Whether the address is a multiple of `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }
}

impl VirtAddr {
    /// The address as an integer.
    pub const fn as_usize(self) -> usize {
        self.0
    }
    /// This address plus `bytes`.
    pub const fn add(self, bytes: usize) -> Self {
        Self(self.0 + bytes)
    }
    /// Round down to a multiple of `align` (a power of two).
    pub const fn align_down(self, align: usize) -> Self {
        Self(self.0 & !(align - 1))
    }
    /// Whether the address is a multiple of `align` (a power of two).
    pub const fn is_aligned(self, align: usize) -> bool {
        self.0 & (align - 1) == 0
    }
    /// The address as a raw pointer.
    pub const fn as_ptr<T>(self) -> *mut T {
        self.0 as *mut T
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PA({:#x})", self.0)
    }
}

impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VA({:#x})", self.0)
    }
}
