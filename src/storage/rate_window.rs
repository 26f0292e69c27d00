//! One Buildkite budget for all replicas: a sliding window per token in Redis (a sorted set of
//! send times, trimmed and counted in one atomic script on Redis's own clock), and a hold that
//! one replica sets when Buildkite says its budget is spent (`RateLimit-Remaining: 0`), so
//! every replica waits for `RateLimit-Reset`. Keys are the token's digest, never the token.

use redis::aio::ConnectionManager;
use std::time::Duration;

/// Trims the window, and admits the request (0) or says how many milliseconds to wait.
const ADMIT: &str = r"
local hold = redis.call('PTTL', KEYS[2])
if hold > 0 then return hold end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  -- A member no other request has, whichever replica or container (pid 1 in each) sends it.
  local id = redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], window)
  redis.call('ZADD', KEYS[1], now, now .. '-' .. id)
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
";

/// The shared window of one token.
#[derive(Clone)]
pub struct SharedWindow {
    connection: ConnectionManager,
    window_key: String,
    hold_key: String,
    sequence_key: String,
}

impl SharedWindow {
    pub fn new(connection: ConnectionManager, token_scope: &str) -> Self {
        Self {
            connection,
            window_key: format!("ciwatch:rate:{token_scope}"),
            hold_key: format!("ciwatch:rate:{token_scope}:hold"),
            sequence_key: format!("ciwatch:rate:{token_scope}:seq"),
        }
    }

    /// `Ok(None)` admits one request; `Ok(Some(wait))` asks to try again after `wait`; `Err`
    /// when Redis did not answer (the caller keeps to its own window then).
    pub async fn admit(
        &self,
        requests: u32,
        window: Duration,
    ) -> redis::RedisResult<Option<Duration>> {
        let mut connection = self.connection.clone();
        let wait_ms: u64 = redis::Script::new(ADMIT)
            .key(&self.window_key)
            .key(&self.hold_key)
            .key(&self.sequence_key)
            .arg(window.as_millis() as u64)
            .arg(requests)
            .invoke_async(&mut connection)
            .await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }

    /// Makes every replica wait `for_how_long` (Buildkite said the budget is spent).
    pub async fn hold(&self, for_how_long: Duration) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(&self.hold_key)
            .arg(1)
            .arg("PX")
            .arg(for_how_long.as_millis().max(1) as u64)
            .query_async(&mut connection)
            .await
    }
}
