//! Signed-out sessions: recorded in Redis, so every instance refuses them, and in this instance's
//! memory, so it refuses them through an outage too.
//!
//! A revocation made while Redis is down is kept in memory and written to Redis once it answers
//! (at the next session check, or the periodic purge). Until then other instances do not know
//! of it: during an outage, a cookie signed out on one instance still opens another.

use super::Store;
use crate::store::{RedisStore, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The revoked session ids this instance knows of.
#[derive(Default)]
pub(super) struct Revoked {
    /// A std mutex: short, synchronous critical sections. Only signed, unexpired cookies are
    /// ever recorded, and each entry leaves when its cookie would have expired.
    ids: Mutex<HashMap<String, Revocation>>,
}

struct Revocation {
    until: Instant,
    /// Whether Redis has it too.
    in_redis: bool,
}

impl Revoked {
    fn insert(&self, id: &str, remaining: Duration, in_redis: bool) {
        let now = Instant::now();
        let mut ids = self.ids.lock().expect("revoked sessions lock");
        ids.retain(|_, revocation| revocation.until > now);
        let until = now + remaining;
        ids.insert(id.to_owned(), Revocation { until, in_redis });
    }

    fn contains(&self, id: &str) -> bool {
        let ids = self.ids.lock().expect("revoked sessions lock");
        ids.get(id)
            .is_some_and(|revocation| revocation.until > Instant::now())
    }

    /// The revocations Redis does not have yet, with their remaining life.
    fn not_in_redis(&self) -> Vec<(String, Duration)> {
        let now = Instant::now();
        let ids = self.ids.lock().expect("revoked sessions lock");
        ids.iter()
            .filter(|(_, revocation)| !revocation.in_redis && revocation.until > now)
            .map(|(id, revocation)| (id.clone(), revocation.until - now))
            .collect()
    }
}

impl Store {
    /// Ends session `id` on every instance for the `remaining` life of its cookie.
    pub async fn revoke_session(&self, id: &str, remaining: Duration) -> Result<(), StoreError> {
        let revoked = &self.shared.revoked;
        revoked.insert(id, remaining, false);
        self.route(
            async |redis| {
                redis.revoke_session(id, remaining).await?;
                revoked.insert(id, remaining, true);
                Ok(())
            },
            async |_| Ok(()),
        )
        .await
    }

    /// Whether session `id` was signed out (here, or on any instance while Redis answers).
    pub async fn is_session_revoked(&self, id: &str) -> Result<bool, StoreError> {
        let revoked = &self.shared.revoked;
        self.route(
            async |redis| {
                write_back(redis, revoked).await?;
                if revoked.contains(id) {
                    return Ok(true);
                }
                let Some(remaining) = redis.session_revoked_for(id).await? else {
                    return Ok(false);
                };
                revoked.insert(id, remaining, true); // remembered through an outage
                Ok(true)
            },
            async |_| Ok(revoked.contains(id)),
        )
        .await
    }

    /// Writes the revocations made during an outage to Redis (run periodically, and before
    /// every session check that reaches Redis).
    pub async fn write_back_revocations(&self) -> Result<(), StoreError> {
        let revoked = &self.shared.revoked;
        self.route(
            async |redis| write_back(redis, revoked).await,
            async |_| Ok(()),
        )
        .await
    }
}

async fn write_back(redis: &RedisStore, revoked: &Revoked) -> Result<(), StoreError> {
    for (id, remaining) in revoked.not_in_redis() {
        redis.revoke_session(&id, remaining).await?;
        revoked.insert(&id, remaining, true);
    }
    Ok(())
}
