//! The limits that keep one careless or hostile request from hurting everybody else.
//! Every limit is configurable from the command line; exceeding one is `LIMIT_EXCEEDED`
//! with a message that names it.

/// The limits in force for a server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest `first`/`last` a paginated list accepts.
    pub max_page_size: usize,
    /// Page size used when a client gives neither `first` nor `last`.
    pub default_page_size: usize,
    /// Most items a bulk mutation accepts in one call.
    pub max_batch_size: usize,
    /// Deepest selection nesting a GraphQL operation may have.
    pub max_query_depth: usize,
    /// Highest complexity score (roughly: fields resolved, multiplied by page sizes).
    pub max_query_complexity: usize,
    /// Largest HTTP request body, in bytes.
    pub max_body_bytes: usize,
    /// Deepest `maxDepth` an impact analysis accepts.
    pub max_impact_depth: u32,
    /// Most CIs one impact analysis may visit.
    pub max_impact_nodes: usize,
    /// CIs an impact analysis lists when the client gives no `limit`.
    pub default_impact_results: usize,
    /// Largest `limit` of an impact analysis.
    pub max_impact_results: usize,
    /// Most aliased fields a GraphQL document may have (aliases multiply work cheaply).
    pub max_query_aliases: usize,
    /// Longest a request may run before it is cancelled (and its writes rolled back).
    pub request_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_page_size: 500,
            default_page_size: 50,
            max_batch_size: 5_000,
            max_query_depth: 15,
            max_query_complexity: 50_000,
            max_body_bytes: 16 * 1024 * 1024,
            max_impact_depth: 50,
            max_impact_nodes: 250_000,
            default_impact_results: 1_000,
            max_impact_results: 20_000,
            max_query_aliases: 100,
            request_timeout: std::time::Duration::from_secs(30),
        }
    }
}
