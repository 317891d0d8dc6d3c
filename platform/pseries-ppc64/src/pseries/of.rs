//! The Open Firmware client interface (IEEE 1275), as SLOF and QEMU's VOF
//! offer it to the kernel they boot: a single entry point taking a block
//! of big-endian 32-bit cells (service name, argument count, result
//! count, arguments, results). Called in real mode on the boot stack,
//! which is addressed physically below 4 GiB, so every pointer handed to
//! firmware fits a cell.

use core::ffi::CStr;

use keel_arch_ppc64::call_firmware_be32;

/// A device-tree node.
pub type Phandle = u32;
/// An open device instance.
pub type Ihandle = u32;

/// The client interface at its entry point.
#[derive(Clone, Copy)]
pub struct Of {
    entry: u32,
}

/// Firmware's "no such thing" and "failed" value.
const FAILED: u32 = u32::MAX;

/// The real address of `p` as a cell: real mode ignores the top four
/// address bits, and everything Keel hands to firmware is below 4 GiB.
fn cell_of<T: ?Sized>(p: *const T) -> u32 {
    (p as *const u8 as usize & 0x0fff_ffff_ffff_ffff) as u32
}

impl Of {
    /// The interface whose entry the firmware passed in r5, if any.
    pub fn new(entry: u64) -> Option<Self> {
        (entry != 0 && entry < 1 << 32).then_some(Self {
            entry: entry as u32,
        })
    }

    fn call(&self, service: &CStr, args: &[u32], rets: &mut [u32]) -> Option<()> {
        let mut block = [0u32; 16];
        let n = args.len();
        if 3 + n + rets.len() > block.len() {
            return None;
        }
        block[0] = cell_of(service.as_ptr()).to_be();
        block[1] = (n as u32).to_be();
        block[2] = (rets.len() as u32).to_be();
        for (cell, a) in block[3..].iter_mut().zip(args) {
            *cell = a.to_be();
        }
        // SAFETY: real mode on the physically addressed boot stack; the
        // block and every pointer in it stay valid for the call.
        let r = unsafe { call_firmware_be32(self.entry, cell_of(block.as_ptr())) };
        if r as i32 == -1 {
            return None;
        }
        for (i, ret) in rets.iter_mut().enumerate() {
            *ret = u32::from_be(block[3 + n + i]);
        }
        Some(())
    }

    fn call1(&self, service: &CStr, args: &[u32]) -> Option<u32> {
        let mut r = [0u32; 1];
        self.call(service, args, &mut r)?;
        Some(r[0])
    }

    /// The node at `path`.
    pub fn finddevice(&self, path: &CStr) -> Option<Phandle> {
        let p = self.call1(c"finddevice", &[cell_of(path.as_ptr())])?;
        (p != 0 && p != FAILED).then_some(p)
    }

    /// Copy property `name` of `node` into `buf`; returns its full length
    /// (which may exceed `buf`), or `None` if it does not exist.
    pub fn getprop(&self, node: Phandle, name: &CStr, buf: &mut [u8]) -> Option<usize> {
        let len = self.call1(
            c"getprop",
            &[
                node,
                cell_of(name.as_ptr()),
                cell_of(buf.as_ptr()),
                buf.len() as u32,
            ],
        )?;
        (len != FAILED).then_some(len as usize)
    }

    /// The property `name` of `node` as a slice of `buf` (truncated to
    /// `buf` if longer).
    pub fn prop<'b>(&self, node: Phandle, name: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let len = self.getprop(node, name, buf)?;
        Some(&buf[..len.min(buf.len())])
    }

    /// The first child of `node`.
    pub fn child(&self, node: Phandle) -> Option<Phandle> {
        let p = self.call1(c"child", &[node])?;
        (p != 0 && p != FAILED).then_some(p)
    }

    /// The next sibling of `node`.
    pub fn peer(&self, node: Phandle) -> Option<Phandle> {
        let p = self.call1(c"peer", &[node])?;
        (p != 0 && p != FAILED).then_some(p)
    }

    /// Open the device at `path`.
    pub fn open(&self, path: &CStr) -> Option<Ihandle> {
        let i = self.call1(c"open", &[cell_of(path.as_ptr())])?;
        (i != 0 && i != FAILED).then_some(i)
    }

    /// The node of an open instance.
    pub fn instance_to_package(&self, instance: Ihandle) -> Option<Phandle> {
        let p = self.call1(c"instance-to-package", &[instance])?;
        (p != 0 && p != FAILED).then_some(p)
    }

    /// `ibm,client-architecture-support` on the root: tell the platform
    /// what this OS supports (the vector at `vector`). Returns the
    /// method's result (0 = accepted).
    pub fn client_architecture_support(&self, root: Ihandle, vector: &[u8]) -> Option<u32> {
        let mut rets = [0u32; 2];
        self.call(
            c"call-method",
            &[
                cell_of(c"ibm,client-architecture-support".as_ptr()),
                root,
                cell_of(vector.as_ptr()),
            ],
            &mut rets,
        )?;
        Some(rets[0] | rets[1])
    }

    /// Tell firmware the OS takes over (it stops its devices).
    pub fn quiesce(&self) {
        let mut none = [0u32; 0];
        let _ = self.call(c"quiesce", &[], &mut none);
    }
}
