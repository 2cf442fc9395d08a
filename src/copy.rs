//! Appending bytes to a buffer without meeting a slow `memcpy` path.
//!
//! glibc releases that predate the fix for
//! [bug 30994](https://sourceware.org/bugzilla/show_bug.cgi?id=30994)
//! (Debian 12's 2.36 is one) copy blocks of more than about 2 KiB with
//! `rep movsb` on CPUs that advertise fast short `rep movsb` (FSRM), AMD
//! Zen 3 and Zen 4 among them. There, `rep movsb` is about 15–20 times
//! slower when the destination lies a few bytes past the source modulo
//! 4 KiB; the fix stops glibc using it on those CPUs. Measured on an EPYC (Zen 3)
//! with Debian 12's glibc 2.36: copying 1 MiB in 8 KiB pieces took 25–35 µs,
//! or 370–580 µs when `(destination - source) % 4096` was 1 to 31. The
//! staging window of [`ETagHasher`](crate::ETagHasher) is one such
//! destination, and whether a body's pieces meet it that way depends only on
//! where the allocator put them, so a whole hash could take 2.5 times as
//! long from one process to the next.
//!
//! Copies of at most 2048 bytes do not take the `rep movsb` path (its
//! threshold is 2048 bytes or more unless tuned lower), so a copy
//! at such an offset is made in steps of that size instead. Anywhere else,
//! or with another C library, this costs one comparison.

use std::slice::Chunks;

use bytes::BufMut;

/// A copy size below glibc's default `rep movsb` threshold (2048 bytes
/// and up, depending on the CPU).
const STEP: usize = 2048;

/// Offsets `(destination - source) % 4096` to copy around: the slow range
/// measured on Zen 3 was 1 to 31; a whole cache line is kept clear.
const ALIASED: std::ops::Range<usize> = 1..64;

/// `src` in the pieces to append it in, when it is appended at `dst_end`
/// (the address one past the last byte of the destination buffer, which
/// should have room for all of `src`): one piece, or steps of [`STEP`]
/// bytes when the two addresses fall in the slow range.
fn pieces(dst_end: *const u8, src: &[u8]) -> Chunks<'_, u8> {
    // Only the addresses are compared; nothing is read through them.
    let offset = (dst_end as usize).wrapping_sub(src.as_ptr() as usize) % 4096;
    let step = if src.len() > STEP && ALIASED.contains(&offset) {
        STEP
    } else {
        src.len().max(1)
    };
    src.chunks(step)
}

/// Appends `src` to `dst` (a `Vec<u8>` or a `BytesMut` with room for it),
/// in [`pieces`].
pub(crate) fn extend<B: BufMut + AsRef<[u8]>>(dst: &mut B, src: &[u8]) {
    // Where the next byte goes. A buffer that must grow first moves, which
    // would only spoil the choice of steps; both callers have room.
    let filled = dst.as_ref();
    let end = filled.as_ptr().wrapping_add(filled.len());
    for piece in pieces(end, src) {
        dst.put_slice(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lens(dst_end: usize, src: &[u8]) -> Vec<usize> {
        let end = src.as_ptr().wrapping_add(dst_end);
        pieces(end, src).map(<[u8]>::len).collect()
    }

    #[test]
    fn copies_in_steps_only_at_the_slow_offsets() {
        let src = vec![7u8; 8 * 1024 + 5];
        for offset in [0, 64, 100, 2048, 4095, 4096, 4096 * 3] {
            assert_eq!(lens(offset, &src), [src.len()], "offset {offset}");
        }
        for offset in [1, 16, 31, 63, 4096 + 16] {
            assert_eq!(
                lens(offset, &src),
                [2048, 2048, 2048, 2048, 5],
                "offset {offset}"
            );
        }
        // Below the step, one copy whatever the offset.
        assert_eq!(lens(16, &src[..STEP]), [STEP]);
        assert_eq!(lens(16, &[]), Vec::<usize>::new());
    }

    #[test]
    fn extend_appends_every_byte_in_order_at_any_offset() {
        let buf: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        for offset in [0, 1, 16, 31, 63, 64, 2048] {
            let mut dst = Vec::with_capacity(64 * 1024);
            dst.extend_from_slice(b"head");
            // A source whose start lies `offset` bytes before the end of
            // `dst`, modulo 4096.
            let end = dst.as_ptr() as usize + dst.len();
            let at = end.wrapping_sub(offset).wrapping_sub(buf.as_ptr() as usize) % 4096;
            let src = &buf[at..at + 9000];
            let expected_pieces = if ALIASED.contains(&offset) { 5 } else { 1 };
            assert_eq!(
                pieces(dst.as_ptr().wrapping_add(dst.len()), src).count(),
                expected_pieces,
                "offset {offset}"
            );
            extend(&mut dst, src);
            assert_eq!(&dst[..4], b"head");
            assert_eq!(&dst[4..], src, "offset {offset}");
        }
    }
}
