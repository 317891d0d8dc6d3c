//! The kernel's random numbers: a ChaCha20 generator seeded from the CPU's
//! hardware generator (when it has one) and clock jitter, reseeded as
//! entropy sources (virtio-rng, later) add to it. Backs getrandom(2),
//! /dev/random, /dev/urandom and AT_RANDOM.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use keel_hal::machine;

use crate::sync::SpinLock;

static RNG: SpinLock<Option<ChaCha20Rng>> = SpinLock::new(None);

fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        // Clock jitter alone is weak; the hardware generator carries the
        // strength where it exists.
        let jitter =
            machine::monotonic_ns().rotate_left(i as u32 * 13) ^ (machine::monotonic_ns() << 7);
        let hw = machine::hardware_random().unwrap_or(0);
        chunk.copy_from_slice(&(jitter ^ hw).to_le_bytes());
    }
    seed
}

/// Fill `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    let mut rng = RNG.lock();
    rng.get_or_insert_with(|| ChaCha20Rng::from_seed(seed()))
        .fill_bytes(buf);
}

/// Mix outside entropy into the generator.
pub fn add_entropy(data: &[u8]) {
    let mut rng = RNG.lock();
    let mut s = seed();
    if let Some(r) = rng.as_mut() {
        let mut old = [0u8; 32];
        r.fill_bytes(&mut old);
        for (a, b) in s.iter_mut().zip(old) {
            *a ^= b;
        }
    }
    for (i, &b) in data.iter().enumerate() {
        s[i % 32] ^= b;
    }
    *rng = Some(ChaCha20Rng::from_seed(s));
}

/// A random u64.
pub fn next_u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}
