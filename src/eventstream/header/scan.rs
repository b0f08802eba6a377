//! Byte comparisons a word at a time, for the fast paths of [`read`](super::read) and
//! [`kind`](mod@super::kind).

/// `a == b`, eight bytes at a time and inline. With `b` a constant this unrolls into a
/// few loads and XORs, where `==` on slices calls `bcmp`. (An index loop, not a `zip`
/// of `chunks_exact`: the profile showed `Zip::new` as a call of its own, 4% of
/// decode + assemble.)
#[inline(always)]
pub(super) fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (Some(a_last), Some(b_last)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) else {
        return a == b;
    };
    let word = |w: &[u8], at: usize| {
        w.get(at..)
            .and_then(<[u8]>::first_chunk::<8>)
            .map_or(0, |w| u64::from_ne_bytes(*w))
    };
    // The last eight bytes cover what the whole words leave over.
    let mut diff = u64::from_ne_bytes(*a_last) ^ u64::from_ne_bytes(*b_last);
    let mut at = 0;
    while at + 8 <= a.len() {
        diff |= word(a, at) ^ word(b, at);
        at += 8;
    }
    diff == 0
}

/// `<[u8]>::is_ascii`, a word at a time: for sections of a hundred bytes or so this is
/// several times fewer instructions than the standard library's version.
#[inline]
pub(super) fn is_ascii(bytes: &[u8]) -> bool {
    let Some(last) = bytes.last_chunk::<8>() else {
        return bytes.iter().all(u8::is_ascii);
    };
    // The last eight bytes cover what `chunks_exact` leaves over.
    let mut seen = u64::from_ne_bytes(*last);
    for word in bytes.chunks_exact(8) {
        // `chunks_exact(8)` yields 8-byte slices, so this never takes the `0`.
        seen |= word.first_chunk::<8>().map_or(0, |w| u64::from_ne_bytes(*w));
    }
    seen & 0x8080_8080_8080_8080 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_at_a_time_ascii_check() {
        for len in 0..40 {
            let mut bytes = vec![b'a'; len];
            assert!(is_ascii(&bytes));
            for at in 0..len {
                bytes[at] = 0x80;
                assert!(!is_ascii(&bytes), "len {len}, non-ASCII at {at}");
                bytes[at] = 0x7f;
                assert!(is_ascii(&bytes));
            }
        }
    }

    #[test]
    fn word_at_a_time_equality() {
        let a: Vec<u8> = (0..40).collect();
        for len in 0..a.len() {
            assert!(equal(&a[..len], &a[..len]));
            assert!(!equal(&a[..len], &a[1..=len]) || len == 0);
            for at in 0..len {
                let mut b = a[..len].to_vec();
                b[at] ^= 0x40;
                assert!(!equal(&a[..len], &b), "len {len}, at {at}");
            }
            if len > 0 {
                assert!(!equal(&a[..len], &a[..len - 1]));
            }
        }
    }
}
