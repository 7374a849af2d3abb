//! What a server is configured with, apart from where its database is.

use crate::domain::clock::Clock;
use crate::domain::discovery::DiscoveryConfig;
use crate::domain::webhook::delivery::DeliverySettings;
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
    /// Live updates: buffers, limits and keep-alive of subscriptions.
    pub events: EventSettings,
    /// How webhooks are delivered to, and where they may point.
    pub webhooks: DeliverySettings,
}

/// Live updates over WebSocket.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// How many events a subscriber may fall behind the newest before it reads what it
    /// missed from the database instead of from memory (it loses nothing either way).
    pub subscriber_buffer: usize,
    /// How long the server waits for a client to take a message before it closes the
    /// connection as too slow (4008, `SUBSCRIBER_TOO_SLOW`; the client resumes with `after`).
    pub send_timeout: std::time::Duration,
    /// Most subscriptions one WebSocket connection may hold at once.
    pub subscriptions_per_connection: usize,
    /// Most subscriptions one token may hold at once, over all its connections.
    pub subscriptions_per_token: usize,
    /// How often the server pings a WebSocket client.
    pub ping_interval: std::time::Duration,
    /// How long a WebSocket client may stay silent (no message, no pong) before the server
    /// closes the connection.
    pub idle_timeout: std::time::Duration,
    /// The longest the server goes without looking for new events when nothing told it of
    /// any (they are normally seen at once: commits in this instance, notifications from
    /// others).
    pub fallback_poll: std::time::Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            subscriber_buffer: 4096,
            send_timeout: std::time::Duration::from_secs(10),
            subscriptions_per_connection: 20,
            subscriptions_per_token: 200,
            ping_interval: std::time::Duration::from_secs(20),
            idle_timeout: std::time::Duration::from_secs(60),
            fallback_poll: std::time::Duration::from_secs(1),
        }
    }
}
