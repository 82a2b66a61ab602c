//! The date and time strings inferperf writes, all through `jiff`: ISO 8601 timestamps as
//! Python's `datetime.isoformat()` prints them (perf dumps, run records), SGLang's `MMDD`
//! result-file prefix in local time, and the compact UTC stamp of generated-media file names.

use std::time::SystemTime;

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// `t` as a `jiff` timestamp; a time `jiff` cannot represent (far outside years -9999..=9999)
/// reads as the Unix epoch, as a clock before 1970 did before.
fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::try_from(t).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Python's `datetime.now(timezone.utc).isoformat()` for `t`:
/// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (the fraction omitted when it is zero, as Python does;
/// microseconds, truncated).
pub fn iso8601_utc(t: SystemTime) -> String {
    let ts = timestamp(t);
    let base = ts.strftime("%Y-%m-%dT%H:%M:%S");
    match ts.subsec_microsecond() {
        0 => format!("{base}+00:00"),
        micros => format!("{base}.{micros:06}+00:00"),
    }
}

/// `MMDD` of `t` in `tz`: the date prefix SGLang's `bench_serving` puts in its default result
/// file names (`{backend}_{MMDD}_{num_prompts}_...jsonl`).
pub fn mmdd(t: SystemTime, tz: &TimeZone) -> String {
    timestamp(t)
        .to_zoned_datetime(tz.clone())
        .strftime("%m%d")
        .to_string()
}

/// [`mmdd`] of now in the system's local time zone, as Python's `datetime.now()` sees it.
pub fn local_mmdd() -> String {
    mmdd(SystemTime::now(), &TimeZone::system())
}

/// `YYYYMMDD-HHMMSS` of `t` in UTC: the time part of `inferperf generate`'s default output names
/// (SGLang stamps local time there; ours stay UTC, so names do not depend on the machine).
pub fn compact_utc(t: SystemTime) -> String {
    timestamp(t).strftime("%Y%m%d-%H%M%S").to_string()
}

/// A wall-clock instant that is neither RFC 3339 nor Unix seconds.
#[derive(Debug, thiserror::Error)]
#[error(
    "{input:?} is not an instant: give RFC 3339 (2026-12-05T12:00:00Z) or Unix seconds ({why})"
)]
pub struct InstantParseError {
    pub input: String,
    pub why: String,
}

/// An instant given as RFC 3339 (`2026-12-05T12:00:00Z`, any offset) or as Unix seconds
/// (`1764936000`, `1764936000.5`), as Unix nanoseconds (`--start-at`).
pub fn parse_instant_unix_ns(input: &str) -> Result<u64, InstantParseError> {
    let err = |why: String| InstantParseError {
        input: input.to_owned(),
        why,
    };
    let s = input.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return Err(err("Unix seconds must be a non-negative number".into()));
        }
        return Ok((secs * 1e9).round() as u64);
    }
    let ts: Timestamp = s.parse().map_err(|e: jiff::Error| err(e.to_string()))?;
    u64::try_from(ts.as_nanosecond()).map_err(|_| err("before 1970".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at_micros(us: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(us)
    }

    #[test]
    fn iso_timestamps_match_python() {
        assert_eq!(
            iso8601_utc(at_micros(1_767_323_045_123_456)),
            "2026-01-02T03:04:05.123456+00:00"
        );
        // Leap day, no fraction.
        assert_eq!(
            iso8601_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00+00:00"
        );
        // Sub-microsecond parts are truncated, as Python's microsecond clock does.
        assert_eq!(
            iso8601_utc(UNIX_EPOCH + Duration::from_nanos(1_000_000_000_000_000_999)),
            "2001-09-09T01:46:40+00:00"
        );
        assert_eq!(
            iso8601_utc(at_micros(7)),
            "1970-01-01T00:00:00.000007+00:00"
        );
        assert_eq!(
            iso8601_utc(UNIX_EPOCH - Duration::from_secs(1)),
            "1969-12-31T23:59:59+00:00"
        );
    }

    #[test]
    fn mmdd_is_in_the_given_zone() {
        // 2026-01-02T03:04:05Z is still January 1st in New York, January 2nd in UTC and Tokyo.
        let t = at_micros(1_767_323_045_123_456);
        assert_eq!(mmdd(t, &TimeZone::UTC), "0102");
        let ny = TimeZone::fixed(jiff::tz::offset(-5));
        assert_eq!(mmdd(t, &ny), "0101");
        let tokyo = TimeZone::fixed(jiff::tz::offset(9));
        assert_eq!(mmdd(t, &tokyo), "0102");
        assert_eq!(local_mmdd().len(), 4);
        assert!(local_mmdd().bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn compact_stamps_are_utc_digits() {
        assert_eq!(
            compact_utc(at_micros(1_767_323_045_123_456)),
            "20260102-030405"
        );
        assert_eq!(compact_utc(UNIX_EPOCH), "19700101-000000");
    }

    #[test]
    fn instants_parse_as_rfc3339_or_unix_seconds() {
        let t = 1_764_936_000_000_000_000u64;
        assert_eq!(parse_instant_unix_ns("2025-12-05T12:00:00Z").ok(), Some(t));
        assert_eq!(
            parse_instant_unix_ns("2025-12-05T13:00:00+01:00").ok(),
            Some(t)
        );
        assert_eq!(parse_instant_unix_ns("1764936000").ok(), Some(t));
        assert_eq!(
            parse_instant_unix_ns("1764936000.5").ok(),
            Some(t + 500_000_000)
        );
        let e = parse_instant_unix_ns("tomorrow").expect_err("not an instant");
        assert!(e.to_string().contains("tomorrow") && e.to_string().contains("RFC 3339"));
        assert!(parse_instant_unix_ns("-5").is_err());
    }
}
