//! A fixed-capacity list: the tree is read before the kernel has a heap.

/// Up to `N` values of `T`, in insertion order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct List<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> List<T, N> {
    /// An empty list.
    pub fn new() -> Self {
        Self {
            items: [T::default(); N],
            len: 0,
        }
    }

    /// Append `value`; returns false (and drops it) when the list is full.
    pub fn push(&mut self, value: T) -> bool {
        if self.len == N {
            return false;
        }
        self.items[self.len] = value;
        self.len += 1;
        true
    }

    /// The values.
    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    /// The values, to change in place.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: Copy + Default, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + Default + core::fmt::Debug, const N: usize> core::fmt::Debug for List<T, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}
