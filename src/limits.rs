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
        }
    }
}
