//! A job document shaped and sized like jobcast's (about 340 bytes), for the servers that have
//! none of their own to send: the many-jobs floor's events and the messages published to Nchan.

use std::io::Write;

/// Writes the document of job `id` at `seq` into `out` (appended), its step alternating with `seq`.
pub fn write(out: &mut Vec<u8>, id: &str, seq: u64) {
    let step = if seq.is_multiple_of(2) { "a" } else { "b" };
    let _ = write!(
        out,
        r#"{{"job_id":"{id}","kind":"bench","status":"processing","progress":50,"current_step":"{step}","created_at":"2026-12-02T07:00:00.000Z","updated_at":"2026-12-02T07:00:01.000Z","completed_at":null,"expires_at":"2026-12-03T07:00:01.000Z","error":null,"seq":{seq},"attempt":1,"input":{{"product_name":"Benchmark cola"}},"result":null}}"#
    );
}
