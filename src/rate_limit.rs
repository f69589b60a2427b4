//! Per-client rate limits on creating jobs and on opening streams, keyed by the client address
//! (`crate::client_addr`): a flood from one client is refused with 429 before it queues work or
//! holds a stream, while every other client keeps its own allowance.

use crate::metrics::{LimitLabel, Metrics};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// How often clients whose allowance is full again are forgotten, so the limiters' memory stays
/// bounded by the clients seen recently (under a flood of addresses too).
pub const RATE_LIMIT_PRUNE_INTERVAL: Duration = Duration::from_secs(10);
/// IPv6 clients are keyed by this prefix: one host usually holds a whole /64.
pub const IPV6_CLIENT_PREFIX_BITS: u32 = 64;

/// What a limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `POST /api/v4/deep-research` and `POST /api/v4/jobs`.
    Create,
    /// Opening an SSE or WebSocket stream, or a long-poll.
    Stream,
}

/// A request over its client's limit.
#[derive(Debug)]
pub struct Refused {
    pub limit: Limit,
    /// When the client will have an allowance again.
    pub retry_after: Duration,
}

impl Refused {
    /// `retry_after` in whole seconds, rounded up (what `Retry-After` says).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

/// A cheap, clonable handle to the limiters (one `Arc`: the state is cloned per request).
#[derive(Clone)]
pub struct RateLimits(Arc<Limiters>);

/// One limiter per [`Limit`]; `None` where the limit is off (a rate of 0).
struct Limiters {
    create: Option<DefaultKeyedRateLimiter<IpAddr>>,
    stream: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Counts the refusals (the 429s).
    metrics: Metrics,
}

impl RateLimits {
    /// Limits of `(per minute, burst)` for creating jobs and for opening streams; a rate of 0
    /// turns that limit off. Refusals are counted in `metrics`.
    pub fn new(create: (u32, u32), stream: (u32, u32), metrics: Metrics) -> Self {
        Self(Arc::new(Limiters {
            create: limiter(create),
            stream: limiter(stream),
            metrics,
        }))
    }

    /// Counts one `limit` against `client`; refused once it has none left.
    pub fn admit(&self, limit: Limit, client: IpAddr) -> Result<(), Refused> {
        let limiter = match limit {
            Limit::Create => &self.0.create,
            Limit::Stream => &self.0.stream,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(&key(client)).map_err(|not_until| {
            self.0.metrics.jobs().rate_limited(match limit {
                Limit::Create => LimitLabel::Create,
                Limit::Stream => LimitLabel::Stream,
            });
            Refused {
                limit,
                retry_after: not_until.wait_time_from(limiter.clock().now()),
            }
        })
    }

    /// Forgets clients whose allowance has filled up again; how many are still tracked.
    pub fn prune(&self) -> usize {
        [&self.0.create, &self.0.stream]
            .into_iter()
            .flatten()
            .map(|limiter| {
                limiter.retain_recent();
                limiter.shrink_to_fit();
                limiter.len()
            })
            .sum()
    }
}

fn limiter((per_minute, burst): (u32, u32)) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    let per_minute = NonZeroU32::new(per_minute)?;
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::per_minute(per_minute).allow_burst(burst);
    Some(RateLimiter::keyed(quota))
}

/// The key of a client: its IPv4 address, or its IPv6 address's /64.
fn key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - IPV6_CLIENT_PREFIX_BITS);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32) -> RateLimits {
        RateLimits::new((rate, burst), (0, 1), Metrics::default())
    }

    #[test]
    fn a_client_past_its_burst_is_told_when_to_retry_while_others_are_not() {
        let limits = limits(6, 2);
        let (flooder, other) = ([192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        assert!(limits.admit(Limit::Create, flooder).is_ok());
        assert!(limits.admit(Limit::Create, flooder).is_ok());
        let refused = limits.admit(Limit::Create, flooder).unwrap_err();
        assert_eq!(refused.limit, Limit::Create);
        assert!(
            (1..=10).contains(&refused.retry_after_secs()),
            "{refused:?}"
        );
        assert!(limits.admit(Limit::Create, other).is_ok());
    }

    #[test]
    fn a_rate_of_zero_is_unlimited_and_ipv6_hosts_share_their_slash_64() {
        let unlimited = limits(0, 1);
        for _ in 0..1000 {
            assert!(
                unlimited
                    .admit(Limit::Create, [192, 0, 2, 1].into())
                    .is_ok()
            );
        }
        let limits = limits(1, 1);
        let (a, b): (IpAddr, IpAddr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        assert!(limits.admit(Limit::Create, a).is_ok());
        assert!(limits.admit(Limit::Create, b).is_err());
        assert_eq!(limits.prune(), 1);
    }

    #[test]
    fn pruning_forgets_a_flood_of_addresses_once_their_allowance_is_full_again() {
        // 60,000 a minute: one request's allowance comes back within a millisecond.
        let limits = RateLimits::new((0, 1), (60_000, 1), Metrics::default());
        for n in 0..100_000u32 {
            assert!(
                limits
                    .admit(Limit::Stream, IpAddr::from(n.to_be_bytes()))
                    .is_ok()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(limits.prune(), 0);
    }
}
