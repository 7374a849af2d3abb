//! Metrics in the Prometheus text format, served on `GET /metrics`: GraphQL operations by
//! name and outcome with their latency, errors by code, the database pool, and discovery
//! throughput.
//!
//! Operations are labelled with what they did (the operation type and first root field,
//! from the schema: see `graphql::access::metric_label`), never with names clients choose,
//! so the label set is small and fixed; anything else counts as `other`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabel {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DiscoveryLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

fn latency() -> Histogram {
    // 0.25 ms to about 16 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 17))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    operations: Family<OperationLabels, Counter>,
    durations: Family<NameLabel, Histogram, fn() -> Histogram>,
    errors: Family<CodeLabel, Counter>,
    discovery: Family<DiscoveryLabels, Counter>,
    discovery_batches: Counter,
    pool: Family<PoolLabel, Gauge>,
    subscriptions: Gauge,
    deliveries: Family<StatusLabel, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cmdb");
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "graphql_operations",
            "GraphQL operations by name and outcome (ok or error)",
            operations.clone(),
        );
        let durations =
            Family::<NameLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        registry.register(
            "graphql_operation_duration_seconds",
            "Time to answer a GraphQL operation",
            durations.clone(),
        );
        let errors = Family::<CodeLabel, Counter>::default();
        registry.register(
            "graphql_errors",
            "Errors returned to clients, by code",
            errors.clone(),
        );
        let discovery = Family::<DiscoveryLabels, Counter>::default();
        registry.register(
            "discovery_records",
            "Discovered items and relationships by outcome",
            discovery.clone(),
        );
        let discovery_batches = Counter::default();
        registry.register(
            "discovery_batches",
            "Discovery batches applied",
            discovery_batches.clone(),
        );
        let pool = Family::<PoolLabel, Gauge>::default();
        registry.register(
            "database_pool_connections",
            "Database connections of the pool, by state (idle or in_use)",
            pool.clone(),
        );
        let subscriptions = Gauge::default();
        registry.register(
            "subscriptions_open",
            "GraphQL subscriptions open on this instance",
            subscriptions.clone(),
        );
        let deliveries = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries kept, by status (PENDING, DELIVERED, FAILED)",
            deliveries.clone(),
        );
        Metrics {
            registry,
            operations,
            durations,
            errors,
            discovery,
            discovery_batches,
            pool,
            subscriptions,
            deliveries,
        }
    }

    /// The label as given when it looks like one the server makes (letters, `:`, `+`,
    /// `_`), else `other`: a defence in depth, the labels come from the schema.
    fn label(&self, name: &str) -> String {
        let plain = !name.is_empty()
            && name.len() <= 80
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '+'));
        if plain {
            name.to_owned()
        } else {
            "other".into()
        }
    }

    /// Records one GraphQL operation.
    pub fn operation(&self, name: &str, seconds: f64, error_codes: &[String]) {
        let operation = self.label(name);
        let outcome = if error_codes.is_empty() {
            "ok"
        } else {
            "error"
        };
        self.operations
            .get_or_create(&OperationLabels {
                operation: operation.clone(),
                outcome: outcome.into(),
            })
            .inc();
        self.durations
            .get_or_create(&NameLabel { operation })
            .observe(seconds);
        for code in error_codes {
            self.errors
                .get_or_create(&CodeLabel { code: code.clone() })
                .inc();
        }
    }

    /// Records a discovery batch: counts per kind (`item`, `relationship`) and outcome.
    pub fn discovery_batch(&self, counts: &[(&str, &str, u64)]) {
        self.discovery_batches.inc();
        for (kind, outcome, count) in counts {
            self.discovery
                .get_or_create(&DiscoveryLabels {
                    kind: (*kind).into(),
                    outcome: (*outcome).into(),
                })
                .inc_by(*count);
        }
    }

    /// Records the live updates' state as of now: open subscriptions, and webhook
    /// deliveries by status.
    pub fn live(&self, subscriptions: usize, deliveries: &[(String, u64)]) {
        self.subscriptions.set(subscriptions as i64);
        for (status, count) in deliveries {
            self.deliveries
                .get_or_create(&StatusLabel {
                    status: status.clone(),
                })
                .set(*count as i64);
        }
    }

    /// The metrics in the Prometheus text format, with the pool's current state.
    pub fn render(&self, pool_size: u32, pool_idle: usize) -> String {
        let idle = pool_idle as i64;
        self.pool
            .get_or_create(&PoolLabel {
                state: "idle".into(),
            })
            .set(idle);
        self.pool
            .get_or_create(&PoolLabel {
                state: "in_use".into(),
            })
            .set(i64::from(pool_size) - idle);
        let mut text = String::new();
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_errors_and_discovery_are_counted() {
        let metrics = Metrics::new();
        metrics.operation("ListServers", 0.002, &[]);
        metrics.operation("ListServers", 0.004, &["NOT_FOUND".into()]);
        metrics.operation("weird name {", 0.001, &[]);
        metrics.discovery_batch(&[("item", "created", 10)]);
        let text = metrics.render(5, 4);
        assert!(
            text.contains(
                r#"cmdb_graphql_operations_total{operation="ListServers",outcome="ok"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"cmdb_graphql_operations_total{operation="other",outcome="ok"} 1"#)
        );
        assert!(text.contains(r#"cmdb_graphql_errors_total{code="NOT_FOUND"} 1"#));
        assert!(text.contains(r#"cmdb_discovery_records_total{kind="item",outcome="created"} 10"#));
        assert!(text.contains(r#"cmdb_database_pool_connections{state="in_use"} 1"#));
        assert!(text.contains("cmdb_graphql_operation_duration_seconds_bucket"));
    }
}
