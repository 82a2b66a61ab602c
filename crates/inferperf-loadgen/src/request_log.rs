//! `--print-requests`: one stdout line when a request starts (with the body it sends) and one
//! when it ends (with its output), in SGLang's `rid=… time=… message="…"` shape. SGLang does
//! this for `sglang-oai-chat` only; here every backend logs.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};

use crate::record::RequestRecord;

/// A logged request in flight.
pub struct Started {
    rid: String,
    at: Instant,
}

/// A uuid4-shaped id, reproducible from the request's index and turn.
fn rid(index: usize, turn: usize) -> String {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(((index as u64) << 20) ^ turn as u64);
    let mut b: [u8; 16] = rng.gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn epoch_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Log the start of `rec`'s request, whose body is `body`.
pub fn start(rec: &RequestRecord, body: &[u8]) -> Started {
    let started = Started {
        rid: rid(rec.index, rec.turn),
        at: Instant::now(),
    };
    println!(
        "rid={} time={:.6} message=\"request start\" request_func_input={:?}",
        started.rid,
        epoch_s(),
        String::from_utf8_lossy(body)
    );
    started
}

/// Log the end of a request: its output, or its error.
pub fn end(started: Started, rec: &RequestRecord) {
    let output = match &rec.error {
        None => format!("{:?}", rec.generated_text),
        Some(e) => format!("{:?}", format!("error: {}", e.message)),
    };
    println!(
        "rid={} time={:.6} time_delta={:.6} message=\"request end\" output={output}",
        started.rid,
        epoch_s(),
        started.at.elapsed().as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rids_are_uuid4_shaped_and_distinct_per_request_and_turn() {
        let a = rid(1, 0);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "version nibble");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "variant: {a}");
        assert_eq!(a, rid(1, 0));
        assert_ne!(a, rid(1, 1));
        assert_ne!(a, rid(2, 0));
    }
}
