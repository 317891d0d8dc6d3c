//! DSL directories and datasets (`dsl_dir_phys_t`, `dsl_dataset_phys_t`),
//! the MOS objects that name datasets, link them into a tree and hold each
//! dataset's root block pointer and space accounting.

use crate::blkptr::BlockPointer;
use crate::bytes::u64_at;
use crate::error::Result;

/// Bonus size of a DSL directory.
pub const DIR_SIZE: usize = 256;
/// Bonus size of a DSL dataset.
pub const DATASET_SIZE: usize = 320;
/// `dd_flags`: the used-space breakdown is maintained.
pub const DIR_FLAG_USED_BREAKDOWN: u64 = 1;

/// A bonus buffer viewed as little-endian words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words<const N: usize>(pub [u64; N]);

impl<const N: usize> Words<N> {
    /// Decode (a short buffer reads as zeros past its end).
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut w = [0u64; N];
        for (i, v) in w.iter_mut().enumerate() {
            if (i + 1) * 8 <= buf.len() {
                *v = u64_at(buf, i * 8)?;
            }
        }
        Ok(Words(w))
    }

    /// Encode.
    pub fn to_bytes(&self) -> alloc::vec::Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

/// `dsl_dir_phys_t`.
pub type DslDir = Words<32>;
/// `dsl_dataset_phys_t`.
pub type DslDataset = Words<40>;

/// Word indexes of `dsl_dir_phys_t`.
pub mod dir {
    /// `dd_creation_time`.
    pub const CREATION_TIME: usize = 0;
    /// `dd_head_dataset_obj`.
    pub const HEAD_DATASET: usize = 1;
    /// `dd_parent_obj`.
    pub const PARENT: usize = 2;
    /// `dd_origin_obj`.
    pub const ORIGIN: usize = 3;
    /// `dd_child_dir_zapobj`.
    pub const CHILD_DIR_ZAP: usize = 4;
    /// `dd_used_bytes`.
    pub const USED_BYTES: usize = 5;
    /// `dd_compressed_bytes`.
    pub const COMPRESSED_BYTES: usize = 6;
    /// `dd_uncompressed_bytes`.
    pub const UNCOMPRESSED_BYTES: usize = 7;
    /// `dd_props_zapobj`.
    pub const PROPS_ZAP: usize = 10;
    /// `dd_flags`.
    pub const FLAGS: usize = 12;
    /// `dd_used_breakdown[DD_USED_HEAD]`.
    pub const USED_HEAD: usize = 13;
    /// `dd_used_breakdown[DD_USED_CHILD]`.
    pub const USED_CHILD: usize = 15;
    /// `dd_clones`.
    pub const CLONES: usize = 18;
}

/// Word indexes of `dsl_dataset_phys_t`.
pub mod dataset {
    /// `ds_dir_obj`.
    pub const DIR: usize = 0;
    /// `ds_prev_snap_obj`.
    pub const PREV_SNAP: usize = 1;
    /// `ds_prev_snap_txg`.
    pub const PREV_SNAP_TXG: usize = 2;
    /// `ds_next_snap_obj`.
    pub const NEXT_SNAP: usize = 3;
    /// `ds_snapnames_zapobj`.
    pub const SNAPNAMES_ZAP: usize = 4;
    /// `ds_num_children`.
    pub const NUM_CHILDREN: usize = 5;
    /// `ds_creation_time`.
    pub const CREATION_TIME: usize = 6;
    /// `ds_creation_txg`.
    pub const CREATION_TXG: usize = 7;
    /// `ds_deadlist_obj`.
    pub const DEADLIST: usize = 8;
    /// `ds_referenced_bytes`.
    pub const REFERENCED_BYTES: usize = 9;
    /// `ds_compressed_bytes`.
    pub const COMPRESSED_BYTES: usize = 10;
    /// `ds_uncompressed_bytes`.
    pub const UNCOMPRESSED_BYTES: usize = 11;
    /// `ds_unique_bytes`.
    pub const UNIQUE_BYTES: usize = 12;
    /// `ds_fsid_guid`.
    pub const FSID_GUID: usize = 13;
    /// `ds_guid`.
    pub const GUID: usize = 14;
    /// First word of `ds_bp`.
    pub const BP: usize = 16;
}

impl DslDataset {
    /// The dataset's root block pointer (its object set).
    pub fn bp(&self) -> BlockPointer {
        let mut words = [0u64; 16];
        words.copy_from_slice(&self.0[dataset::BP..dataset::BP + 16]);
        BlockPointer { words }
    }

    /// Replace the root block pointer.
    pub fn set_bp(&mut self, bp: &BlockPointer) {
        self.0[dataset::BP..dataset::BP + 16].copy_from_slice(&bp.words);
    }
}
