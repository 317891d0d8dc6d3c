//! Fatzap geometry shared by the reader and the builder: header fields,
//! leaf layout (header, hash table, 24-byte chunks) and chunk kinds.

/// Chunk kind: an entry.
pub const CHUNK_ENTRY: u8 = 252;
/// Chunk kind: part of a name or value array.
pub const CHUNK_ARRAY: u8 = 251;
/// Chunk kind: free.
pub const CHUNK_FREE: u8 = 253;
/// Size of a chunk.
pub const CHUNK_SIZE: usize = 24;
/// Payload bytes of an array chunk.
pub const ARRAY_BYTES: usize = 21;
/// End of a chunk chain.
pub const CHAIN_END: u16 = 0xffff;
/// Size of a leaf header.
pub const LEAF_HEADER: usize = 48;

/// Header field offsets.
pub mod header {
    /// `zap_block_type`.
    pub const BLOCK_TYPE: usize = 0;
    /// `zap_magic`.
    pub const MAGIC: usize = 8;
    /// `zt_blk`: first block of an external pointer table.
    pub const PTRTBL_BLK: usize = 16;
    /// `zt_numblks`: 0 when the table is embedded.
    pub const PTRTBL_NUMBLKS: usize = 24;
    /// `zt_shift`: bits of hash that index the table.
    pub const PTRTBL_SHIFT: usize = 32;
    /// `zap_freeblk`.
    pub const FREEBLK: usize = 56;
    /// `zap_num_leafs`.
    pub const NUM_LEAFS: usize = 64;
    /// `zap_num_entries`.
    pub const NUM_ENTRIES: usize = 72;
    /// `zap_salt`.
    pub const SALT: usize = 80;
    /// `zap_normflags`.
    pub const NORMFLAGS: usize = 88;
    /// `zap_flags`.
    pub const FLAGS: usize = 96;
}

/// Leaf header field offsets.
pub mod leaf {
    /// `lh_block_type`.
    pub const BLOCK_TYPE: usize = 0;
    /// `lh_prefix`.
    pub const PREFIX: usize = 16;
    /// `lh_magic`.
    pub const MAGIC: usize = 24;
    /// `lh_nfree`.
    pub const NFREE: usize = 28;
    /// `lh_nentries`.
    pub const NENTRIES: usize = 30;
    /// `lh_prefix_len`.
    pub const PREFIX_LEN: usize = 32;
    /// `lh_freelist`.
    pub const FREELIST: usize = 34;
}

/// Entry chunk field offsets (relative to the chunk).
pub mod entry {
    /// `le_value_intlen`.
    pub const VALUE_INTLEN: usize = 1;
    /// `le_next`.
    pub const NEXT: usize = 2;
    /// `le_name_chunk`.
    pub const NAME_CHUNK: usize = 4;
    /// `le_name_numints`.
    pub const NAME_NUMINTS: usize = 6;
    /// `le_value_chunk`.
    pub const VALUE_CHUNK: usize = 8;
    /// `le_value_numints`.
    pub const VALUE_NUMINTS: usize = 10;
    /// `le_cd`.
    pub const CD: usize = 12;
    /// `le_hash`.
    pub const HASH: usize = 16;
}

/// Geometry of a leaf of `1 << block_shift` bytes.
#[derive(Debug, Clone, Copy)]
pub struct LeafGeometry {
    /// log2 of the block size.
    pub block_shift: u32,
}

impl LeafGeometry {
    /// Entries in the leaf's hash table.
    pub fn hash_entries(self) -> usize {
        1 << (self.block_shift - 5)
    }
    /// Byte offset of chunk `i`.
    pub fn chunk_offset(self, i: usize) -> usize {
        LEAF_HEADER + 2 * self.hash_entries() + i * CHUNK_SIZE
    }
    /// Number of chunks.
    pub fn chunks(self) -> usize {
        ((1usize << self.block_shift) - 2 * self.hash_entries()) / CHUNK_SIZE - 2
    }
    /// Hash table slot of `hash` in a leaf with `prefix_len`.
    pub fn hash_slot(self, hash: u64, prefix_len: u32) -> usize {
        let shift = 64 - (self.block_shift - 5) - prefix_len;
        ((hash >> shift) as usize) & (self.hash_entries() - 1)
    }
}

/// Entries in an embedded pointer table (the second half of the header).
pub fn embedded_table_shift(block_shift: u32) -> u32 {
    block_shift - 3 - 1
}

/// Chunks an entry with a `name_len`-byte name (without NUL) and
/// `value_bytes` of value needs.
pub fn entry_chunks(name_len: usize, value_bytes: usize) -> usize {
    1 + (name_len + 1).div_ceil(ARRAY_BYTES) + value_bytes.div_ceil(ARRAY_BYTES)
}
