//! `cmdb serve`'s options for live updates (subscriptions) and webhooks.

use std::time::Duration;

use clap::Args;

use crate::domain::webhook::UrlPolicy;
use crate::domain::webhook::delivery::DeliverySettings;
use crate::settings::EventSettings;

/// Live updates and webhooks.
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// Most operations (subscriptions, and queries while they run) one WebSocket
    /// connection may hold at once.
    #[arg(long, env = "CMDB_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = EventSettings::default().subscriptions_per_connection)]
    pub subscriptions_per_connection: usize,

    /// Most subscriptions one API token may hold at once, over all its connections.
    #[arg(long, env = "CMDB_SUBSCRIPTIONS_PER_TOKEN", default_value_t = EventSettings::default().subscriptions_per_token)]
    pub subscriptions_per_token: usize,

    /// How many events a subscriber may fall behind the newest before it reads what it
    /// missed from the database instead of memory (it loses nothing either way).
    #[arg(long, env = "CMDB_SUBSCRIBER_BUFFER", default_value_t = EventSettings::default().subscriber_buffer)]
    pub subscriber_buffer: usize,

    /// Seconds a WebSocket client may take no message before the server closes it as too
    /// slow (code 4008, SUBSCRIBER_TOO_SLOW; it resumes with `after`).
    #[arg(long, env = "CMDB_WS_SEND_TIMEOUT_SECS", default_value_t = EventSettings::default().send_timeout.as_secs())]
    pub ws_send_timeout_secs: u64,

    /// Seconds a WebSocket client may stay silent (no message, no pong to the server's
    /// pings) before the connection is closed.
    #[arg(long, env = "CMDB_WS_IDLE_TIMEOUT_SECS", default_value_t = EventSettings::default().idle_timeout.as_secs())]
    pub ws_idle_timeout_secs: u64,

    /// Host (name or address) a webhook may point at although it is loopback or
    /// link-local (repeatable, or comma-separated). None by default.
    #[arg(
        long = "webhook-allowed-host",
        env = "CMDB_WEBHOOK_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub webhook_allowed_hosts: Vec<String>,

    /// Attempts at delivering one event to a webhook before it is marked FAILED.
    #[arg(long, env = "CMDB_WEBHOOK_MAX_ATTEMPTS", default_value_t = DeliverySettings::default().max_attempts)]
    pub webhook_max_attempts: u32,

    /// Seconds one webhook delivery may take, connection included.
    #[arg(long, env = "CMDB_WEBHOOK_TIMEOUT_SECS", default_value_t = DeliverySettings::default().timeout.as_secs())]
    pub webhook_timeout_secs: u64,

    /// Leave webhook deliveries to other instances (events wait in the database for the
    /// next instance that delivers).
    #[arg(long, env = "CMDB_NO_WEBHOOK_DELIVERY")]
    pub no_webhook_delivery: bool,
}

impl LiveArgs {
    /// The live update settings these options give.
    pub fn events(&self) -> EventSettings {
        let idle_timeout = Duration::from_secs(self.ws_idle_timeout_secs.max(1));
        let defaults = EventSettings::default();
        EventSettings {
            subscriptions_per_connection: self.subscriptions_per_connection.max(1),
            subscriptions_per_token: self.subscriptions_per_token.max(1),
            subscriber_buffer: self.subscriber_buffer,
            send_timeout: Duration::from_secs(self.ws_send_timeout_secs.max(1)),
            // Pinged a few times within the idle time, so that a live client always answers
            // in time.
            ping_interval: defaults.ping_interval.min(idle_timeout / 3),
            idle_timeout,
            ..defaults
        }
    }

    /// The webhook delivery settings these options give.
    pub fn webhooks(&self) -> DeliverySettings {
        DeliverySettings {
            deliver: !self.no_webhook_delivery,
            policy: UrlPolicy {
                allowed_hosts: self.webhook_allowed_hosts.clone(),
            },
            max_attempts: self.webhook_max_attempts.max(1),
            timeout: Duration::from_secs(self.webhook_timeout_secs.max(1)),
            ..DeliverySettings::default()
        }
    }
}
