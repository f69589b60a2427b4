//! A job's control token: returned only in the answer that created the job, it lets that
//! client cancel the job, through any instance, without the admin token.
//!
//! The token is `hex(HMAC-SHA256(key, "jobcast-control:<job id>"))`: nothing is stored, every
//! instance with the same key checks it, and it says nothing about other jobs. The key is
//! `CONTROL_TOKEN_SECRET`, else `ADMIN_TOKEN`; with neither, a random key per process (tokens then
//! hold only on the instance that created the job, which is enough for one instance on loopback).

use crate::config::Secret;
use crate::job::JobId;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The key that signs and checks control tokens.
pub struct ControlTokens {
    key: Vec<u8>,
}

impl ControlTokens {
    /// Tokens keyed by `secret`, or by a random key when there is none.
    pub fn new(secret: Option<&Secret>) -> Self {
        let key = match secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
                .iter()
                .flat_map(|uuid| *uuid.as_bytes())
                .collect(),
        };
        Self { key }
    }

    /// The control token of job `id`.
    pub fn for_job(&self, id: JobId) -> String {
        self.mac(id).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `presented` is job `id`'s control token (compared in constant time).
    pub fn verify(&self, id: JobId, presented: &str) -> bool {
        presented
            .as_bytes()
            .ct_eq(self.for_job(id).as_bytes())
            .into()
    }

    fn mac(&self, id: JobId) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("jobcast-control:{id}").as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_its_own_job_only_and_only_under_its_key() {
        let secret = Secret::parse("s3cret").unwrap();
        let tokens = ControlTokens::new(Some(&secret));
        let (job, other) = (JobId::new(), JobId::new());
        let token = tokens.for_job(job);
        assert_eq!(token.len(), 64);
        assert!(tokens.verify(job, &token));
        assert!(!tokens.verify(other, &token));
        assert!(!tokens.verify(job, &token[..63]));
        assert!(
            ControlTokens::new(Some(&secret)).verify(job, &token),
            "any instance with the key"
        );
        let other_key = ControlTokens::new(Some(&Secret::parse("other").unwrap()));
        assert!(!other_key.verify(job, &token));
        assert!(!ControlTokens::new(None).verify(job, &token));
    }
}
