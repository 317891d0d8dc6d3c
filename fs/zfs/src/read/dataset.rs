//! Datasets: from the MOS object directory to the root DSL directory, its
//! children, and each head dataset's object set pointer.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::BlockReader;
use super::object::{read_dnode, zap_list, zap_u64};
use crate::blkptr::BlockPointer;
use crate::dsl::{DslDataset, DslDir, dataset, dir};
use crate::error::{Error, Result};
use crate::objset::ObjsetPhys;

/// Object number of the MOS object directory.
pub const OBJECT_DIRECTORY: u64 = 1;

/// A dataset found in the MOS.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Full name without the pool ("" for the root dataset, "app/db").
    pub name: String,
    /// DSL directory object.
    pub dir_object: u64,
    /// Head DSL dataset object.
    pub dataset_object: u64,
    /// The dataset's object set.
    pub bp: BlockPointer,
}

fn load_dir<R: BlockReader + ?Sized>(
    reader: &mut R,
    mos: &ObjsetPhys,
    object: u64,
) -> Result<DslDir> {
    let d = read_dnode(reader, mos, object)?;
    DslDir::parse(&d.bonus)
}

fn dataset_of<R: BlockReader + ?Sized>(
    reader: &mut R,
    mos: &ObjsetPhys,
    name: String,
    dir_object: u64,
) -> Result<Dataset> {
    let dsl_dir = load_dir(reader, mos, dir_object)?;
    let dataset_object = dsl_dir.0[dir::HEAD_DATASET];
    if dataset_object == 0 {
        return Err(Error::NotFound);
    }
    let d = read_dnode(reader, mos, dataset_object)?;
    let ds = DslDataset::parse(&d.bonus)?;
    if ds.0[dataset::DIR] != dir_object {
        return Err(Error::corrupt(format!(
            "dataset {dataset_object} does not point back at directory {dir_object}"
        )));
    }
    Ok(Dataset {
        name,
        dir_object,
        dataset_object,
        bp: ds.bp(),
    })
}

/// The pool's root dataset.
pub fn root_dataset<R: BlockReader + ?Sized>(reader: &mut R, mos: &ObjsetPhys) -> Result<Dataset> {
    let directory = read_dnode(reader, mos, OBJECT_DIRECTORY)?;
    let root_dir = zap_u64(reader, &directory, "root_dataset")?;
    dataset_of(reader, mos, String::new(), root_dir)
}

/// Child directories of a DSL directory (hidden `$MOS`, `$FREE` and
/// `$ORIGIN` left out).
pub fn child_dirs<R: BlockReader + ?Sized>(
    reader: &mut R,
    mos: &ObjsetPhys,
    dir_object: u64,
) -> Result<Vec<(String, u64)>> {
    let dsl_dir = load_dir(reader, mos, dir_object)?;
    let zap = read_dnode(reader, mos, dsl_dir.0[dir::CHILD_DIR_ZAP])?;
    let mut out = Vec::new();
    for (name, value) in zap_list(reader, &zap)? {
        if name.first() == Some(&b'$') {
            continue;
        }
        let object = value
            .as_u64()
            .ok_or_else(|| Error::corrupt("child directory entry is not a u64"))?;
        out.push((String::from_utf8_lossy(&name).into_owned(), object));
    }
    out.sort();
    Ok(out)
}

/// The dataset `name` ("", the pool name, "child" or "pool/child/…").
pub fn find_dataset<R: BlockReader + ?Sized>(
    reader: &mut R,
    mos: &ObjsetPhys,
    pool_name: &str,
    name: &str,
) -> Result<Dataset> {
    let relative = name
        .strip_prefix(pool_name)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .unwrap_or(name)
        .trim_matches('/');
    let root = root_dataset(reader, mos)?;
    if relative.is_empty() {
        return Ok(root);
    }
    let mut dir_object = root.dir_object;
    for part in relative.split('/') {
        dir_object = child_dirs(reader, mos, dir_object)?
            .into_iter()
            .find(|(n, _)| n == part)
            .map(|(_, o)| o)
            .ok_or(Error::NotFound)?;
    }
    dataset_of(reader, mos, relative.into(), dir_object)
}

/// Every dataset with an object set, depth first.
pub fn all_datasets<R: BlockReader + ?Sized>(
    reader: &mut R,
    mos: &ObjsetPhys,
    _pool_name: &str,
) -> Result<Vec<Dataset>> {
    let root = root_dataset(reader, mos)?;
    let mut out = Vec::new();
    let mut stack = alloc::vec![(String::new(), root.dir_object)];
    while let Some((name, dir_object)) = stack.pop() {
        if let Ok(ds) = dataset_of(reader, mos, name.clone(), dir_object) {
            out.push(ds);
        }
        let mut children = child_dirs(reader, mos, dir_object)?;
        children.reverse();
        for (child, object) in children {
            let full = if name.is_empty() {
                child
            } else {
                format!("{name}/{child}")
            };
            stack.push((full, object));
        }
    }
    Ok(out)
}
