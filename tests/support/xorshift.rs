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
