//! Trace times as text: Chrome-trace `ts`/`dur` values are microseconds, written as integers
//! or with up to three decimals (nanoseconds). Merging moves every event's `ts`, so reading
//! and writing them is on the hot path: these do it exactly (no `f64`, which cannot hold a
//! Unix-µs time to the nanosecond) and without allocating.

/// Nanoseconds of a plain decimal µs value -- `-?digits(.d{1,3})?`, as Kineto and our own
/// writers produce -- exactly; `None` for anything else (exponents, more decimals, a leading
/// zero, out of range), which the caller reads the general way.
pub fn parse_us(v: &[u8]) -> Option<i64> {
    let (negative, digits) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, v),
    };
    let (int, frac) = match memchr::memchr(b'.', digits) {
        Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
        None => (digits, None),
    };
    let us = crate::fastscan::small_uint(int)?;
    let mut sub: i64 = 0;
    if let Some(frac) = frac {
        if frac.is_empty() || frac.len() > 3 {
            return None;
        }
        for i in 0..3 {
            let d = match frac.get(i) {
                Some(d) if d.is_ascii_digit() => i64::from(d - b'0'),
                Some(_) => return None,
                None => 0,
            };
            sub = sub * 10 + d;
        }
    }
    let ns = us.checked_mul(1000)?.checked_add(sub)?;
    Some(if negative { -ns } else { ns })
}

/// Appends `ns` as µs with exactly three decimals (`1669783687464181.123`, `-0.500`).
pub fn write_us(ns: i64, out: &mut Vec<u8>) {
    if ns < 0 {
        out.push(b'-');
    }
    let a = ns.unsigned_abs();
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(a / 1000).as_bytes());
    let frac = (a % 1000) as u16;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// Appends `ns` as µs: an integer when it is whole and `integral` allows it, else with three
/// decimals.
pub fn write_us_compact(ns: i64, integral: bool, out: &mut Vec<u8>) {
    if integral && ns % 1000 == 0 {
        out.extend_from_slice(itoa::Buffer::new().format(ns / 1000).as_bytes());
    } else {
        write_us(ns, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(ns: i64) -> String {
        let mut v = Vec::new();
        write_us(ns, &mut v);
        String::from_utf8(v).unwrap_or_default()
    }

    #[test]
    fn decimal_microseconds_read_exactly() {
        assert_eq!(parse_us(b"0"), Some(0));
        assert_eq!(parse_us(b"12"), Some(12_000));
        assert_eq!(parse_us(b"1.5"), Some(1_500));
        assert_eq!(parse_us(b"-0.25"), Some(-250));
        assert_eq!(parse_us(b"998500.123"), Some(998_500_123));
        // A Unix-µs time to the nanosecond: beyond an f64's 53 bits.
        assert_eq!(
            parse_us(b"1669783687464181.123"),
            Some(1_669_783_687_464_181_123)
        );
        for other in [
            &b""[..],
            b"-",
            b"1.",
            b".5",
            b"1.2345",
            b"1e3",
            b"01",
            b"1.5x",
            b"\"1\"",
            b"99999999999999999",
            b"9999999999999999999",
        ] {
            assert_eq!(
                parse_us(other),
                None,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn microseconds_written_with_three_decimals() {
        assert_eq!(us(1_500), "1.500");
        assert_eq!(us(-500), "-0.500");
        assert_eq!(us(-1_500), "-1.500");
        assert_eq!(us(7), "0.007");
        assert_eq!(us(1_669_783_687_464_181_123), "1669783687464181.123");
        assert_eq!(us(i64::MIN), "-9223372036854775.808");
        let mut v = Vec::new();
        write_us_compact(3_000, true, &mut v);
        v.push(b' ');
        write_us_compact(3_000, false, &mut v);
        v.push(b' ');
        write_us_compact(3_001, true, &mut v);
        assert_eq!(String::from_utf8_lossy(&v), "3 3.000 3.001");
    }
}
