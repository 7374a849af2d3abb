//! What a server is configured with, apart from where its database is.

use crate::domain::clock::Clock;
use crate::domain::discovery::DiscoveryConfig;
use crate::limits::Limits;

/// A server's settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub limits: Limits,
    pub discovery: DiscoveryConfig,
    /// Whether requests without a token may read (never write).
    pub allow_anonymous_read: bool,
    /// Whether `GET /metrics` needs a valid token.
    pub metrics_require_token: bool,
    /// The clock of everything that expires (cached token checks); tests move it by hand.
    pub clock: Clock,
    /// How often, on SQLite, the server looks for writes by other processes (`cmdb import`,
    /// `cmdb token revoke`); `None`: every [`POLL_INTERVAL`](crate::domain::changes::POLL_INTERVAL).
    /// Tests that count statements set it long, so that no look lands inside what they count.
    pub change_poll_interval: Option<std::time::Duration>,
}
