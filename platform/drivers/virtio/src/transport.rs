//! Building virtio-drivers transports from what the platform found: a
//! virtio-mmio window, or a PCI function behind Keel's [`ConfigSpace`];
//! and [`Keel`], the transport wrapper that decides which features the
//! device is offered.

use alloc::format;
use alloc::string::String;
use core::ptr::NonNull;

use bitflags::Flags;
use core::fmt::Debug;
use core::ops::BitAnd;

use keel_driver_pci::{Bdf, ConfigSpace};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::{
    DeviceStatus, DeviceType, InterruptStatus, SomeTransport, Transport,
};
use virtio_drivers::{PhysAddr, Result};

use crate::hal::{KeelHal, premap};

/// VIRTIO_F_RING_EVENT_IDX: withheld. virtio-drivers 0.12 compares ring
/// indices without wrap-around arithmetic when deciding whether to notify,
/// so after 65536 requests a notification could be skipped and a request
/// hang; without it the device simply notifies on every used buffer.
const RING_EVENT_IDX: u64 = 1 << 29;

/// Every feature negotiation so far: (device type, offered, accepted).
static NEGOTIATED: keel_core::sync::SpinLock<alloc::vec::Vec<(DeviceType, u64, u64)>> =
    keel_core::sync::SpinLock::new(alloc::vec::Vec::new());

/// Every feature negotiation so far: (device type, offered, accepted).
pub fn negotiated() -> alloc::vec::Vec<(DeviceType, u64, u64)> {
    NEGOTIATED.lock().clone()
}

/// A transport whose feature offer Keel controls.
#[derive(Debug)]
pub struct Keel {
    inner: SomeTransport<'static>,
    /// Features the device offered, before masking (for the logs).
    pub offered: u64,
    /// Features written back to the device.
    pub accepted: u64,
}

impl Keel {
    fn new(inner: SomeTransport<'static>) -> Self {
        Self {
            inner,
            offered: 0,
            accepted: 0,
        }
    }
}

impl Transport for Keel {
    fn device_type(&self) -> DeviceType {
        self.inner.device_type()
    }
    fn read_device_features(&mut self) -> u64 {
        self.offered = self.inner.read_device_features();
        self.offered & !RING_EVENT_IDX
    }
    fn write_driver_features(&mut self, driver_features: u64) {
        self.accepted = driver_features;
        NEGOTIATED
            .lock()
            .push((self.inner.device_type(), self.offered, driver_features));
        self.inner.write_driver_features(driver_features);
    }
    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.inner.max_queue_size(queue)
    }
    fn notify(&mut self, queue: u16) {
        self.inner.notify(queue);
    }
    fn get_status(&self) -> DeviceStatus {
        self.inner.get_status()
    }
    fn set_status(&mut self, status: DeviceStatus) {
        self.inner.set_status(status);
    }
    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.inner.set_guest_page_size(guest_page_size);
    }
    fn requires_legacy_layout(&self) -> bool {
        self.inner.requires_legacy_layout()
    }
    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.inner
            .queue_set(queue, size, descriptors, driver_area, device_area);
    }
    fn queue_unset(&mut self, queue: u16) {
        self.inner.queue_unset(queue);
    }
    fn queue_used(&mut self, queue: u16) -> bool {
        self.inner.queue_used(queue)
    }
    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.inner.ack_interrupt()
    }
    fn begin_init<F: Flags<Bits = u64> + BitAnd<Output = F> + Debug>(
        &mut self,
        supported_features: F,
    ) -> F {
        // The provided method, through the masking reads above.
        self.set_status(DeviceStatus::empty());
        self.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        let offered = F::from_bits_truncate(self.read_device_features());
        let negotiated = offered & supported_features;
        self.write_driver_features(negotiated.bits());
        self.set_status(
            DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK,
        );
        self.set_guest_page_size(keel_core::memory::PAGE_SIZE as u32);
        negotiated
    }
    fn read_config_generation(&self) -> u32 {
        self.inner.read_config_generation()
    }
    fn read_config_space<T: zerocopy::FromBytes + zerocopy::IntoBytes>(
        &self,
        offset: usize,
    ) -> Result<T> {
        self.inner.read_config_space(offset)
    }
    fn write_config_space<T: zerocopy::IntoBytes + zerocopy::Immutable>(
        &mut self,
        offset: usize,
        value: T,
    ) -> Result<()> {
        self.inner.write_config_space(offset, value)
    }
}

/// The virtio-mmio window at physical `base` (`size` bytes), if it holds a
/// device. `Ok(None)` is an empty slot (device ID 0).
pub fn mmio(base: u64, size: u64) -> core::result::Result<Option<Keel>, String> {
    if size < 0x100 {
        return Err(format!(
            "virtio-mmio window at {base:#x} is only {size:#x} bytes"
        ));
    }
    let va = premap(base, size as usize)?;
    let header = NonNull::new(va as *mut VirtIOHeader).ok_or("null mapping")?;
    // An empty slot has magic and version but device ID 0, which
    // virtio-drivers reports as an unknown device type; look first.
    // SAFETY: `va` maps the whole window uncached; offset 8 is DeviceID.
    let device_id = unsafe { ((va + 8) as *const u32).read_volatile() };
    if device_id == 0 {
        return Ok(None);
    }
    // SAFETY: the window is mapped for the kernel's lifetime, is only
    // handed to this one transport, and `size` bytes long.
    let t = unsafe { MmioTransport::new(header, size as usize) }
        .map_err(|e| format!("virtio-mmio at {base:#x}: {e}"))?;
    Ok(Some(Keel::new(SomeTransport::Mmio(t))))
}

/// Keel's configuration-space access as virtio-drivers wants it.
#[derive(Clone, Copy)]
struct Cam<'a>(&'a dyn ConfigSpace);

fn bdf(df: DeviceFunction) -> Bdf {
    Bdf {
        bus: df.bus,
        device: df.device,
        function: df.function,
    }
}

impl ConfigurationAccess for Cam<'_> {
    fn read_word(&self, df: DeviceFunction, register_offset: u8) -> u32 {
        self.0.read32(bdf(df), u16::from(register_offset))
    }
    fn write_word(&mut self, df: DeviceFunction, register_offset: u8, data: u32) {
        self.0.write32(bdf(df), u16::from(register_offset), data);
    }
    unsafe fn unsafe_clone(&self) -> Self {
        *self
    }
}

/// The modern virtio-pci transport of the function at `at` (transitional
/// devices have one too). Its memory BARs must have addresses (firmware
/// assigns them on q35, the platform on aarch64 virt). Enables memory
/// decoding and bus mastering.
pub fn pci(cfg: &dyn ConfigSpace, at: Bdf) -> core::result::Result<Keel, String> {
    let df = DeviceFunction {
        bus: at.bus,
        device: at.device,
        function: at.function,
    };
    let mut root = PciRoot::new(Cam(cfg));
    let bars = root
        .bars(df)
        .map_err(|e| format!("virtio-pci {at}: reading BARs: {e}"))?;
    for (i, bar) in bars.iter().enumerate() {
        if let Some((address, size)) = bar.as_ref().and_then(|b| b.memory_address_size())
            && address != 0
            && size != 0
        {
            premap(address, size as usize).map_err(|e| format!("virtio-pci {at}: BAR {i}: {e}"))?;
        }
    }
    let (_, command) = root.get_status_command(df);
    // Memory decoding and DMA; I/O decoding stays as it was (the modern
    // interface uses no I/O BAR, and on machines without firmware the
    // I/O BAR of a transitional device has no address).
    root.set_command(df, command | Command::MEMORY_SPACE | Command::BUS_MASTER);
    let t = PciTransport::new::<KeelHal, _>(&mut root, df)
        .map_err(|e| format!("virtio-pci {at}: {e} (a legacy-only device?)"))?;
    Ok(Keel::new(SomeTransport::Pci(t)))
}

/// The INTx pin (1 = INTA … 4 = INTD, 0 = none) of a PCI function.
pub fn pci_interrupt_pin(cfg: &dyn ConfigSpace, at: Bdf) -> u8 {
    (cfg.read32(at, 0x3c) >> 8) as u8
}
