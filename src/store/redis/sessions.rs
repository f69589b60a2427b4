//! Revoked browser sessions in Redis: one key per signed-out session id, expiring when the
//! session would have, so every instance refuses the cookie and nothing outlives it.

use super::RedisStore;
use crate::store::StoreError;
use std::time::Duration;

/// The prefix of a revoked session's key; the session id follows.
pub const REVOKED_SESSION_PREFIX: &str = "{jobcast}:revoked:";

fn key(id: &str) -> String {
    format!("{REVOKED_SESSION_PREFIX}{id}")
}

impl RedisStore {
    /// Records that session `id` is signed out, for the `remaining` life of its cookie.
    pub async fn revoke_session(&self, id: &str, remaining: Duration) -> Result<(), StoreError> {
        let millis = u64::try_from(remaining.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut connection = self.connection();
        ::redis::cmd("SET")
            .arg(key(id))
            .arg(1)
            .arg("PX")
            .arg(millis)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    /// How much longer session `id` stays revoked; `None` when it is not.
    pub async fn session_revoked_for(&self, id: &str) -> Result<Option<Duration>, StoreError> {
        let mut connection = self.connection();
        let millis: i64 = ::redis::cmd("PTTL")
            .arg(key(id))
            .query_async(&mut connection)
            .await?;
        Ok(u64::try_from(millis)
            .ok()
            .filter(|&m| m > 0)
            .map(Duration::from_millis))
    }
}
