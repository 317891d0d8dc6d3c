//! Host tests of keel-ssh: the shell against keel-mgmt's fake system, the
//! line editor byte by byte, key formats, and the session fed garbage.

mod console;
mod editor;
mod keys;
mod session;
mod shell;

use crate::keys::Rng;

/// Deterministic "randomness" (xorshift64) so a failing test replays.
pub struct TestRng(pub u64);

impl Rng for TestRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}
