//! File contents through the ZPL: write (growing a single-block file's
//! block up to 128 KiB, then 128 KiB records), read, and truncate (freeing
//! whole blocks past the end and zeroing the tail of the last one).

use alloc::vec;

use super::zpl::{MAX_BLOCK, ZplState};
use crate::error::{Error, Result};
use crate::read::BlockReader;
use crate::read::zpl::FileKind;
use crate::sa::Attributes;

impl ZplState {
    /// Grow a single-block file's block to hold `size` bytes (up to 128 KiB).
    fn fit_block_size<R: BlockReader>(&mut self, r: &mut R, object: u64, size: u64) -> Result<u32> {
        let d = self.objset.dnode(r, object)?;
        if d.max_blkid > 0 || u64::from(d.block_size) >= size || d.block_size >= MAX_BLOCK {
            return Ok(d.block_size);
        }
        let new_size = if size <= u64::from(MAX_BLOCK) {
            crate::bytes::round_up(size, 512) as u32
        } else {
            MAX_BLOCK
        };
        let old = self.objset.read_block(r, object, 0)?;
        self.objset.dnode_mut(r, object)?.block_size = new_size;
        if let Some(mut block) = old {
            block.resize(new_size as usize, 0);
            self.objset.write_block(object, 0, block);
        }
        Ok(new_size)
    }

    fn require_file<R: BlockReader>(&self, r: &mut R, object: u64) -> Result<Attributes> {
        let a = self.attributes(r, object)?;
        match FileKind::from_mode(a.mode) {
            FileKind::File => Ok(a),
            FileKind::Directory => Err(Error::IsDirectory),
            _ => Err(Error::InvalidArgument("not a regular file".into())),
        }
    }

    /// Write `data` at `offset` of file `object`.
    pub fn write<R: BlockReader>(
        &mut self,
        r: &mut R,
        object: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<()> {
        let a = self.require_file(r, object)?;
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= 1 << 62)
            .ok_or_else(|| Error::InvalidArgument("offset beyond the largest file".into()))?;
        let bs = u64::from(self.fit_block_size(r, object, end.max(a.size))?);
        let mut done = 0usize;
        while done < data.len() {
            let at = offset + done as u64;
            let blkid = at / bs;
            let within = (at % bs) as usize;
            let take = (data.len() - done).min(bs as usize - within);
            let mut block = if within == 0 && take == bs as usize {
                vec![0u8; bs as usize]
            } else {
                self.objset
                    .read_block(r, object, blkid)?
                    .unwrap_or_else(|| vec![0u8; bs as usize])
            };
            block[within..within + take].copy_from_slice(&data[done..done + take]);
            self.objset.write_block(object, blkid, block);
            done += take;
        }
        if end > 0 {
            let d = self.objset.dnode_mut(r, object)?;
            d.max_blkid = d.max_blkid.max((end - 1) / bs);
        }
        let now = self.now;
        self.set_attributes_raw(r, object, |a| {
            a.size = a.size.max(end);
            a.mtime = now;
            a.ctime = now;
        })
    }

    /// Read from file `object` at `offset`; returns bytes read.
    pub fn read<R: BlockReader>(
        &self,
        r: &mut R,
        object: u64,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let a = self.require_file(r, object)?;
        if offset >= a.size {
            return Ok(0);
        }
        let n = buf.len().min((a.size - offset) as usize);
        let bs = u64::from(self.objset.dnode(r, object)?.block_size.max(512));
        let mut done = 0;
        while done < n {
            let at = offset + done as u64;
            let within = (at % bs) as usize;
            let take = (n - done).min(bs as usize - within);
            match self.objset.read_block(r, object, at / bs)? {
                Some(b) => buf[done..done + take].copy_from_slice(&b[within..within + take]),
                None => buf[done..done + take].fill(0),
            }
            done += take;
        }
        Ok(n)
    }

    /// Set the size of file `object`, dropping or adding (sparse) bytes.
    pub fn truncate<R: BlockReader>(&mut self, r: &mut R, object: u64, size: u64) -> Result<()> {
        let a = self.require_file(r, object)?;
        if size > 1 << 62 {
            return Err(Error::InvalidArgument(
                "size beyond the largest file".into(),
            ));
        }
        if size < a.size {
            let bs = u64::from(self.objset.dnode(r, object)?.block_size.max(512));
            if size == 0 {
                self.objset.clear_blocks_from(object, 0);
                self.objset.dnode_mut(r, object)?.max_blkid = 0;
            } else {
                let last = (size - 1) / bs;
                self.objset.clear_blocks_from(object, last + 1);
                if let Some(mut block) = self.objset.read_block(r, object, last)? {
                    block[(size - last * bs) as usize..].fill(0);
                    self.objset.write_block(object, last, block);
                }
                self.objset.dnode_mut(r, object)?.max_blkid = last;
            }
        } else if size > a.size {
            let bs = u64::from(self.fit_block_size(r, object, size)?);
            let d = self.objset.dnode_mut(r, object)?;
            d.max_blkid = d.max_blkid.max((size - 1) / bs);
        }
        let now = self.now;
        self.set_attributes_raw(r, object, |a| {
            a.size = size;
            a.mtime = now;
            a.ctime = now;
        })
    }
}
