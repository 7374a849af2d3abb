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
    /// Largest GraphQL document, in bytes (variables are not part of it). Far below the
    /// body limit: a real client's document is a few kilobytes; data goes in variables.
    pub max_document_bytes: usize,
    /// Most lexical tokens (names, punctuation, values) a document may hold.
    pub max_document_tokens: usize,
    /// Most arguments one field may be given (and variables one operation may declare).
    pub max_field_arguments: usize,
    /// Most directives a document may hold.
    pub max_document_directives: usize,
    /// Most directives on one field, fragment or operation.
    pub max_directives_per_location: usize,
    /// Deepest nesting of brackets (selections, argument lists, lists, objects).
    pub max_document_nesting: usize,
    /// Most fields a document may select once its fragments are expanded.
    pub max_expanded_selections: usize,
    /// Most errors one response carries; the rest are counted in a last error.
    pub max_response_errors: usize,
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
            max_document_bytes: 256 * 1024,
            max_document_tokens: 20_000,
            max_field_arguments: 64,
            max_document_directives: 200,
            max_directives_per_location: 10,
            max_document_nesting: 64,
            max_expanded_selections: 10_000,
            max_response_errors: 20,
        }
    }
}
