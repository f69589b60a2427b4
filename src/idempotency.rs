//! Safe retries of creation: an `Idempotency-Key` header names one create per client for a day
//! (`IDEMPOTENCY_TTL_SECS`), so a backend that retries after a timeout gets the job its first
//! request created instead of a second one.
//!
//! The store keeps, under a hash of the client's scope and its key, a hash of what the request
//! asked for and the id of the job it created, written in the same atomic step as the job.

use crate::job::JobId;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

/// The request header (the IETF draft's name, as Stripe and others use it).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The longest key accepted, in characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// Where the records live in Redis: this prefix, then the hex hash of scope and key.
pub const IDEMPOTENCY_PREFIX: &str = "{jobcast}:idempotency:";

/// A create that may be retried: where its record goes and what the request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The store key of the record.
    pub record: String,
    /// A hash of what the request asks for; a retry must ask for the same.
    pub fingerprint: String,
    /// How long the record is kept, in seconds.
    pub ttl_secs: u64,
}

/// What a create carrying an idempotency key did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Creation {
    /// No create used the key yet: the job was stored (with the record).
    Created,
    /// A create with this key and the same request stored this job before.
    Replayed(JobId),
    /// A create with this key asked for something else: nothing is stored.
    KeyReused,
}

impl IdempotencyKey {
    /// The key `headers` carry, kept per `scope` (who the client is), for a request that asks
    /// for `request` (its meaningful parts: endpoint, kind, priority, input). `None` without the
    /// header; the reason when its value cannot be a key.
    pub fn from_headers(
        headers: &HeaderMap,
        scope: &str,
        request: &[&str],
        ttl_secs: u64,
    ) -> Result<Option<Self>, String> {
        let Some(value) = headers.get(IDEMPOTENCY_KEY_HEADER) else {
            return Ok(None);
        };
        let key = value
            .to_str()
            .ok()
            .map(unquote)
            .filter(|key| is_usable(key))
            .ok_or_else(|| {
                format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII \
                     characters"
                )
            })?;
        Ok(Some(Self {
            record: format!("{IDEMPOTENCY_PREFIX}{}", digest(&[scope, key])),
            fingerprint: digest(request),
            ttl_secs,
        }))
    }

    /// What the record holds once `id` is created: the fingerprint and the job's id.
    pub fn record_value(&self, id: JobId) -> String {
        format!("{} {id}", self.fingerprint)
    }

    /// What a retry finds in a record holding `stored`.
    pub fn replay(&self, stored: &str) -> Creation {
        match stored.split_once(' ') {
            Some((fingerprint, id)) if fingerprint == self.fingerprint => match id.parse() {
                Ok(id) => Creation::Replayed(id),
                Err(_) => Creation::KeyReused, // not our record: refuse rather than guess
            },
            _ => Creation::KeyReused,
        }
    }
}

/// The key without the quotes the IETF draft puts around it (a structured-field string).
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

fn is_usable(key: &str) -> bool {
    (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The hex SHA-256 of `parts`, each length-prefixed so no two lists of parts hash alike.
fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: &str, scope: &str, request: &[&str]) -> Result<Option<IdempotencyKey>, String> {
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY_HEADER, value.parse().unwrap());
        IdempotencyKey::from_headers(&headers, scope, request, 60)
    }

    #[test]
    fn a_key_is_kept_per_client_and_its_quotes_do_not_matter() {
        let bare = key("order-17", "10.0.0.1", &["a"]).unwrap().unwrap();
        let quoted = key("\"order-17\"", "10.0.0.1", &["a"]).unwrap().unwrap();
        let elsewhere = key("order-17", "10.0.0.2", &["a"]).unwrap().unwrap();
        assert_eq!(bare, quoted);
        assert_ne!(bare.record, elsewhere.record);
        assert!(bare.record.starts_with(IDEMPOTENCY_PREFIX));
    }

    #[test]
    fn a_retry_asking_for_something_else_reuses_the_key() {
        let first = key("k", "c", &["deep-research", "0", "{}"])
            .unwrap()
            .unwrap();
        let id = JobId::new();
        let stored = first.record_value(id);
        assert_eq!(first.replay(&stored), Creation::Replayed(id));
        let other = key("k", "c", &["deep-research", "1", "{}"])
            .unwrap()
            .unwrap();
        assert_eq!(other.replay(&stored), Creation::KeyReused);
        let shifted = key("k", "c", &["deep-research0", "", "{}"])
            .unwrap()
            .unwrap();
        assert_ne!(shifted.fingerprint, first.fingerprint);
    }

    #[test]
    fn unusable_keys_are_refused_and_no_header_is_no_key() {
        assert!(key("", "c", &[]).is_err());
        assert!(key("with space", "c", &[]).is_err());
        assert!(key(&"x".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1), "c", &[]).is_err());
        let none = IdempotencyKey::from_headers(&HeaderMap::new(), "c", &[], 60);
        assert_eq!(none, Ok(None));
    }
}
