//! A cheap, deterministic stream of pseudo-random numbers (xorshift64) for
//! test content that must not repeat, shared by the test files that need
//! it.

/// The numbers that follow `seed` (any seed; zero is made odd).
pub fn xorshift(seed: u64) -> impl Iterator<Item = u64> {
    let mut x = seed | 1;
    std::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    })
}

/// `len` bytes from the numbers that follow `seed`: content that does not
/// repeat (frames out of order or lost change it), cheaper than drawing
/// each byte from proptest.
#[allow(dead_code)] // not every test file that includes this uses it
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    xorshift(seed).take(len).map(|x| (x >> 32) as u8).collect()
}
