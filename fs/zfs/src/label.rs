//! Vdev labels: four 256 KiB copies (two at each end of the device), each
//! holding the pool configuration as an nvlist and a ring of uberblocks.
//! The highest-txg valid uberblock across all labels roots the pool.

use alloc::vec;
use alloc::vec::Vec;

use crate::blkptr::{BLKPTR_SIZE, BlockPointer};
use crate::bytes::{put_u64, u64_at};
use crate::checksum::{EMBEDDED_TRAILER, seal_embedded, verify_embedded};
use crate::device::BlockDevice;
use crate::error::{Error, Result};
use crate::nvlist::NvList;

/// Size of one label.
pub const LABEL_SIZE: u64 = 256 * 1024;
/// Number of labels on a vdev.
pub const LABEL_COUNT: usize = 4;
/// Offset of the boot envelope inside a label.
pub const BOOT_ENVELOPE_OFFSET: u64 = 8 * 1024;
/// Size of the boot envelope.
pub const BOOT_ENVELOPE_SIZE: usize = 8 * 1024;
/// Offset of the configuration nvlist block inside a label.
pub const CONFIG_OFFSET: u64 = 16 * 1024;
/// Size of the configuration block (nvlist plus checksum trailer).
pub const CONFIG_SIZE: usize = 112 * 1024;
/// Offset of the uberblock ring inside a label.
pub const RING_OFFSET: u64 = 128 * 1024;
/// Size of the uberblock ring.
pub const RING_SIZE: u64 = 128 * 1024;
/// Bytes before the allocatable area: two labels and the 3.5 MiB boot block.
pub const ALLOCATABLE_START: u64 = 4 * 1024 * 1024;
/// Bytes after the allocatable area: two labels.
pub const ALLOCATABLE_END_RESERVE: u64 = 2 * LABEL_SIZE;

/// Uberblock magic ("oo-ba-bloc").
pub const UBERBLOCK_MAGIC: u64 = 0x00ba_b10c;
/// Multi-modifier-protection magic, set by OpenZFS in every uberblock.
pub const MMP_MAGIC: u64 = 0xa11c_ea11;

/// Size of one uberblock slot for a vdev with this `ashift`.
pub fn uberblock_slot_size(ashift: u32) -> u64 {
    1 << ashift.clamp(10, 13)
}

/// Byte offset of label `index` on a device of `device_size` bytes.
pub fn label_offset(device_size: u64, index: usize) -> u64 {
    let aligned = device_size & !(LABEL_SIZE - 1);
    if index < LABEL_COUNT / 2 {
        index as u64 * LABEL_SIZE
    } else {
        aligned - (LABEL_COUNT - index) as u64 * LABEL_SIZE
    }
}

/// Allocatable bytes of a device (between the leading and trailing labels).
pub fn allocatable_size(device_size: u64) -> u64 {
    (device_size & !(LABEL_SIZE - 1)).saturating_sub(ALLOCATABLE_START + ALLOCATABLE_END_RESERVE)
}

/// The root of a transaction group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Uberblock {
    /// SPA version (5000 for feature-flag pools).
    pub version: u64,
    /// Transaction group this uberblock commits.
    pub txg: u64,
    /// Sum of every vdev guid (checks the vdev set is complete).
    pub guid_sum: u64,
    /// Seconds since the epoch when it was written.
    pub timestamp: u64,
    /// Block pointer of the meta object set.
    pub root_bp: BlockPointer,
    /// Version of the software that wrote it.
    pub software_version: u64,
    /// MMP magic (or 0).
    pub mmp_magic: u64,
    /// MMP write interval.
    pub mmp_delay: u64,
    /// MMP configuration bits.
    pub mmp_config: u64,
    /// Checkpoint txg (0: none).
    pub checkpoint_txg: u64,
}

impl Uberblock {
    /// Decode a slot (magic-checked; the caller verifies the checksum).
    pub fn parse(buf: &[u8]) -> Result<Uberblock> {
        let magic = u64_at(buf, 0)?;
        if magic != UBERBLOCK_MAGIC {
            if magic == UBERBLOCK_MAGIC.swap_bytes() {
                return Err(Error::unsupported("big-endian pool"));
            }
            return Err(Error::corrupt("no uberblock magic"));
        }
        Ok(Uberblock {
            version: u64_at(buf, 8)?,
            txg: u64_at(buf, 16)?,
            guid_sum: u64_at(buf, 24)?,
            timestamp: u64_at(buf, 32)?,
            root_bp: BlockPointer::parse(
                buf.get(40..40 + BLKPTR_SIZE)
                    .ok_or_else(|| Error::corrupt("uberblock slot too short"))?,
            )?,
            software_version: u64_at(buf, 168)?,
            mmp_magic: u64_at(buf, 176)?,
            mmp_delay: u64_at(buf, 184)?,
            mmp_config: u64_at(buf, 192)?,
            checkpoint_txg: u64_at(buf, 200)?,
        })
    }

    /// Encode into a slot of `slot_size` bytes (checksum trailer not yet set).
    pub fn to_slot(&self, slot_size: usize) -> Vec<u8> {
        let mut buf = vec![0u8; slot_size];
        put_u64(&mut buf, 0, UBERBLOCK_MAGIC);
        put_u64(&mut buf, 8, self.version);
        put_u64(&mut buf, 16, self.txg);
        put_u64(&mut buf, 24, self.guid_sum);
        put_u64(&mut buf, 32, self.timestamp);
        self.root_bp.write_to(&mut buf[40..40 + BLKPTR_SIZE]);
        put_u64(&mut buf, 168, self.software_version);
        put_u64(&mut buf, 176, self.mmp_magic);
        put_u64(&mut buf, 184, self.mmp_delay);
        put_u64(&mut buf, 192, self.mmp_config);
        put_u64(&mut buf, 200, self.checkpoint_txg);
        buf
    }

    /// Whether `self` is newer than `other` (txg, then timestamp).
    pub fn newer_than(&self, other: &Uberblock) -> bool {
        (self.txg, self.timestamp) > (other.txg, other.timestamp)
    }
}

/// What the labels say about a pool.
#[derive(Debug, Clone)]
pub struct LabelSummary {
    /// The configuration from the label with the highest config txg.
    pub config: NvList,
    /// The best uberblock over every label.
    pub uberblock: Uberblock,
    /// Which labels had a valid configuration.
    pub valid_labels: [bool; LABEL_COUNT],
    /// Problems found with individual labels (the pool may still import).
    pub label_errors: Vec<(usize, Error)>,
}

/// Read the configuration block of label `index`.
pub fn read_label_config<D: BlockDevice>(dev: &mut D, index: usize) -> Result<NvList> {
    let base = label_offset(dev.size(), index);
    let mut block = vec![0u8; CONFIG_SIZE];
    dev.read_at(base + CONFIG_OFFSET, &mut block)?;
    verify_embedded(&block, base + CONFIG_OFFSET)?;
    NvList::decode(&block[..CONFIG_SIZE - EMBEDDED_TRAILER])
}

/// Read every uberblock of label `index` that verifies.
pub fn read_label_uberblocks<D: BlockDevice>(
    dev: &mut D,
    index: usize,
    ashift: u32,
) -> Result<Vec<Uberblock>> {
    let base = label_offset(dev.size(), index);
    let mut ring = vec![0u8; RING_SIZE as usize];
    dev.read_at(base + RING_OFFSET, &mut ring)?;
    let slot = uberblock_slot_size(ashift) as usize;
    let mut found = Vec::new();
    for (i, chunk) in ring.chunks_exact(slot).enumerate() {
        let at = base + RING_OFFSET + (i * slot) as u64;
        if verify_embedded(chunk, at).is_ok()
            && let Ok(ub) = Uberblock::parse(chunk)
        {
            found.push(ub);
        }
    }
    Ok(found)
}

/// Read all four labels and pick the configuration and the best uberblock.
pub fn read_labels<D: BlockDevice>(dev: &mut D) -> Result<LabelSummary> {
    if dev.size() < ALLOCATABLE_START + ALLOCATABLE_END_RESERVE + LABEL_SIZE {
        return Err(Error::corrupt("device too small to hold a ZFS pool"));
    }
    let mut best_config: Option<NvList> = None;
    let mut best_ub: Option<Uberblock> = None;
    let mut valid = [false; LABEL_COUNT];
    let mut errors = Vec::new();
    for (index, ok) in valid.iter_mut().enumerate() {
        let config = match read_label_config(dev, index) {
            Ok(c) => c,
            Err(e) => {
                errors.push((index, e));
                continue;
            }
        };
        *ok = true;
        let ashift = config
            .list("vdev_tree")
            .and_then(|t| t.u64("ashift"))
            .unwrap_or(9) as u32;
        for ub in read_label_uberblocks(dev, index, ashift)? {
            if best_ub.as_ref().is_none_or(|b| ub.newer_than(b)) {
                best_ub = Some(ub);
            }
        }
        let txg = config.u64("txg").unwrap_or(0);
        if best_config
            .as_ref()
            .is_none_or(|b| txg > b.u64("txg").unwrap_or(0))
        {
            best_config = Some(config);
        }
    }
    let config = best_config.ok_or_else(|| match errors.first() {
        Some((_, e)) => Error::corrupt(alloc::format!("no valid vdev label ({e})")),
        None => Error::corrupt("no valid vdev label"),
    })?;
    let uberblock = best_ub.ok_or_else(|| Error::corrupt("no valid uberblock in any label"))?;
    Ok(LabelSummary {
        config,
        uberblock,
        valid_labels: valid,
        label_errors: errors,
    })
}

/// Build the configuration block of a label (nvlist plus checksum) for
/// label `index` on a device of `device_size` bytes.
pub fn config_block(config: &NvList, device_size: u64, index: usize) -> Result<Vec<u8>> {
    let packed = config.encode();
    if packed.len() > CONFIG_SIZE - EMBEDDED_TRAILER {
        return Err(Error::InvalidArgument(
            "pool configuration too large".into(),
        ));
    }
    let mut block = vec![0u8; CONFIG_SIZE];
    block[..packed.len()].copy_from_slice(&packed);
    seal_embedded(&mut block, label_offset(device_size, index) + CONFIG_OFFSET);
    Ok(block)
}

/// Build the (empty) boot envelope of label `index`, checksummed so
/// loaders that read it are satisfied.
pub fn boot_envelope_block(device_size: u64, index: usize) -> Vec<u8> {
    let mut block = vec![0u8; BOOT_ENVELOPE_SIZE];
    seal_embedded(
        &mut block,
        label_offset(device_size, index) + BOOT_ENVELOPE_OFFSET,
    );
    block
}

/// Byte offset of the ring slot for `txg` in label `index`.
pub fn uberblock_slot_offset(device_size: u64, index: usize, ashift: u32, txg: u64) -> u64 {
    let slot = uberblock_slot_size(ashift);
    let slots = RING_SIZE / slot;
    label_offset(device_size, index) + RING_OFFSET + (txg % slots) * slot
}

/// Build the sealed ring slot holding `ub` for label `index`.
pub fn uberblock_block(ub: &Uberblock, device_size: u64, index: usize, ashift: u32) -> Vec<u8> {
    let slot = uberblock_slot_size(ashift) as usize;
    let mut block = ub.to_slot(slot);
    seal_embedded(
        &mut block,
        uberblock_slot_offset(device_size, index, ashift, ub.txg),
    );
    block
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemoryDevice;
    use crate::nvlist::Value;

    #[test]
    fn label_offsets_follow_the_device_end() {
        let size = 64 * 1024 * 1024 + 1000;
        assert_eq!(label_offset(size, 0), 0);
        assert_eq!(label_offset(size, 1), LABEL_SIZE);
        assert_eq!(label_offset(size, 2), 64 * 1024 * 1024 - 2 * LABEL_SIZE);
        assert_eq!(label_offset(size, 3), 64 * 1024 * 1024 - LABEL_SIZE);
    }

    #[test]
    fn best_uberblock_wins_and_bad_labels_are_tolerated() {
        let size = 16 * 1024 * 1024;
        let mut dev = MemoryDevice::new(size);
        let config = NvList::new().with("txg", Value::U64(5)).with(
            "vdev_tree",
            Value::List(NvList::new().with("ashift", Value::U64(12))),
        );
        for index in 0..LABEL_COUNT {
            let block = config_block(&config, size, index).unwrap();
            dev.write_at(label_offset(size, index) + CONFIG_OFFSET, &block)
                .unwrap();
            for txg in [5u64, 6] {
                let ub = Uberblock {
                    version: 5000,
                    txg,
                    ..Default::default()
                };
                let block = uberblock_block(&ub, size, index, 12);
                dev.write_at(uberblock_slot_offset(size, index, 12, txg), &block)
                    .unwrap();
            }
        }
        // Damage label 0's config and its txg-6 uberblock.
        dev.bytes[(CONFIG_OFFSET + 100) as usize] ^= 0xff;
        let at = uberblock_slot_offset(size, 0, 12, 6) as usize;
        dev.bytes[at + 20] ^= 0xff;
        let summary = read_labels(&mut dev).unwrap();
        assert_eq!(summary.uberblock.txg, 6);
        assert_eq!(summary.valid_labels, [false, true, true, true]);
        assert_eq!(summary.config.u64("txg"), Some(5));
    }
}
