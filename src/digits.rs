//! Whole numbers written as decimal digits straight into a buffer: for the few hot
//! places that write JSON or keys by hand (the simulation's records, the metrics'
//! presence rows, period keys), where the formatter costs more than the rest of the
//! work.

/// `value` in decimal, as JSON writes a whole number.
pub fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut first = digits.len();
    loop {
        first -= 1;
        // A digit, below 10.
        digits[first] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[first..]);
}

/// `value` in decimal, as JSON writes a whole number.
pub fn push_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_u64(out, value.unsigned_abs());
}

/// `value`'s last `width` (at most 4) decimal digits, zero-padded, as ASCII bytes:
/// the years, months and days of keys and rows.
pub fn padded(value: u32, width: usize) -> impl Iterator<Item = u8> {
    let digits = [
        b'0' + (value / 1000 % 10) as u8,
        b'0' + (value / 100 % 10) as u8,
        b'0' + (value / 10 % 10) as u8,
        b'0' + (value % 10) as u8,
    ];
    digits.into_iter().skip(4 - width.min(4))
}

/// [`padded`] digits appended to `out`.
pub fn push_padded(out: &mut Vec<u8>, value: u32, width: usize) {
    out.extend(padded(value, width));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_rust_writes_them() {
        for n in [0i64, 7, -7, 10, 1_234_567, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_i64(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
        let mut out = Vec::new();
        push_u64(&mut out, u64::MAX);
        assert_eq!(String::from_utf8(out).unwrap(), u64::MAX.to_string());
        let mut out = Vec::new();
        push_padded(&mut out, 7, 4);
        push_padded(&mut out, 123_456, 2);
        push_padded(&mut out, 98_765, 9);
        assert_eq!(out, b"0007568765");
    }
}
