//! The one error type of the domain layer. Each variant has a stable `code()` that clients
//! switch on; the GraphQL layer maps it to `extensions.code` in exactly one place.
//!
//! Invariant: the `Display` text of every variant is safe to show to a client. Database and
//! other infrastructure failures become `Internal`, whose text is only "internal error"; the
//! cause is kept for the server's log.

use std::sync::Arc;

use sea_orm::{DbErr, SqlErr};

/// The stable codes clients switch on (`extensions.code`): every code the API sends is one
/// of these, so the HTTP layer and the GraphQL layer name them from here, never as text of
/// their own.
pub mod codes {
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const VALIDATION: &str = "VALIDATION";
    pub const CONFLICT: &str = "CONFLICT";
    pub const VERSION_MISMATCH: &str = "VERSION_MISMATCH";
    pub const INVALID_TRANSITION: &str = "INVALID_TRANSITION";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const LIMIT_EXCEEDED: &str = "LIMIT_EXCEEDED";
    pub const AMBIGUOUS_IDENTITY: &str = "AMBIGUOUS_IDENTITY";
    pub const BATCH_REJECTED: &str = "BATCH_REJECTED";
    /// A document that does not parse.
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    /// A document that parses but does not fit the schema.
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    /// An operation sent with an HTTP method that may not carry it (a mutation over GET).
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    /// A persisted query's hash this server does not know: send the document with it once.
    pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
    /// The reason a WebSocket connection was closed (code 4008): its client took no message
    /// for too long; reconnecting and subscribing with `after` loses nothing.
    pub const SUBSCRIBER_TOO_SLOW: &str = "SUBSCRIBER_TOO_SLOW";
    pub const INTERNAL: &str = "INTERNAL";
}

/// Result of a domain operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a client can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The thing named does not exist (or no longer does).
    #[error("{message}")]
    NotFound {
        message: String,
        field: Option<String>,
    },
    /// The input is wrong; `field` names the offending input path when there is one.
    #[error("{message}")]
    Validation {
        message: String,
        field: Option<String>,
    },
    /// The write would break a uniqueness or reference rule (a duplicate name, a class
    /// still in use).
    #[error("{0}")]
    Conflict(String),
    /// Optimistic concurrency: someone else changed the record since the client read it.
    #[error("version mismatch: expected version {expected}, the current version is {actual}")]
    VersionMismatch { expected: i32, actual: i32 },
    /// No valid credentials came with the request.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credentials do not allow the operation.
    #[error("{0}")]
    Forbidden(String),
    /// A state machine refused the transition.
    #[error("{0}")]
    InvalidTransition(String),
    /// A configured limit (page size, batch size, query depth...) was exceeded; the message
    /// names the limit.
    #[error("{0}")]
    LimitExceeded(String),
    /// A discovery item matches several CIs, so it is not written (the message names them).
    #[error("{0}")]
    AmbiguousIdentity(String),
    /// A discovery item was fine but not written: the batch is atomic and another failed.
    #[error("{0}")]
    BatchRejected(String),
    /// The GraphQL document (or the request carrying it) could not be read.
    #[error("{0}")]
    ParseFailed(String),
    /// The operation may not be sent this way: a `GET` may carry only queries, because
    /// links, prefetches and caches repeat `GET`s.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A request named a persisted query by its hash alone and this server does not hold
    /// it. The text is the one persisted-query clients look for before resending the
    /// document.
    #[error("PersistedQueryNotFound")]
    PersistedQueryNotFound,
    /// Anything the client cannot fix. The cause is logged, never shown.
    #[error("internal error")]
    Internal(Arc<anyhow::Error>),
}

impl Error {
    /// The stable machine-readable code of this error, sent as `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => codes::NOT_FOUND,
            Error::Validation { .. } => codes::VALIDATION,
            Error::Conflict(_) => codes::CONFLICT,
            Error::VersionMismatch { .. } => codes::VERSION_MISMATCH,
            Error::InvalidTransition(_) => codes::INVALID_TRANSITION,
            Error::Unauthenticated(_) => codes::UNAUTHENTICATED,
            Error::Forbidden(_) => codes::FORBIDDEN,
            Error::LimitExceeded(_) => codes::LIMIT_EXCEEDED,
            Error::AmbiguousIdentity(_) => codes::AMBIGUOUS_IDENTITY,
            Error::BatchRejected(_) => codes::BATCH_REJECTED,
            Error::ParseFailed(_) => codes::GRAPHQL_PARSE_FAILED,
            Error::MethodNotAllowed(_) => codes::METHOD_NOT_ALLOWED,
            Error::PersistedQueryNotFound => codes::PERSISTED_QUERY_NOT_FOUND,
            Error::Internal(_) => codes::INTERNAL,
        }
    }

    /// A `NOT_FOUND` error for the entity kind and the key the client gave.
    pub fn not_found(entity: &'static str, key: impl ToString) -> Self {
        Error::NotFound {
            message: format!("{entity} `{}` not found", key.to_string()),
            field: None,
        }
    }

    /// A `VALIDATION` error about one input field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// An `INTERNAL` error from any cause; the cause is kept for logging.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Error::Internal(Arc::new(cause.into()))
    }

    /// An error report for the command line, with the full cause of internal errors
    /// (an operator running the binary is not a remote client).
    pub fn into_report(self) -> anyhow::Error {
        match self {
            Error::Internal(cause) => anyhow::anyhow!("{cause:#}"),
            other => anyhow::Error::new(other),
        }
    }

    /// Prefixes the field path, so that an error about `attributes.cpu` raised for the
    /// third item of a batch reads `input[2].attributes.cpu`.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Error::Validation { message, field } => {
                let field = match field {
                    Some(field) => format!("{prefix}.{field}"),
                    None => prefix.to_owned(),
                };
                Error::Validation {
                    message: format!("{field}: {message}"),
                    field: Some(field),
                }
            }
            Error::NotFound { message, field } => {
                let field = match field {
                    Some(field) => format!("{prefix}.{field}"),
                    None => prefix.to_owned(),
                };
                Error::NotFound {
                    message: format!("{field}: {message}"),
                    field: Some(field),
                }
            }
            Error::Conflict(message) => Error::Conflict(format!("{prefix}: {message}")),
            other => other,
        }
    }
}

impl From<DbErr> for Error {
    /// Constraint violations that slipped past the domain's own checks (a race with another
    /// writer) are still client errors; everything else is internal.
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Error::Conflict("the write conflicts with an existing record".into())
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => Error::Conflict(
                "the write refers to a record that does not exist, or removes one still referred to"
                    .into(),
            ),
            _ => Error::internal(err),
        }
    }
}

/// Whether a database error is a lost race that succeeds when the transaction is run again:
/// a serialization failure or deadlock on PostgreSQL (SQLSTATE `40001`, `40P01`), a busy or
/// locked database on SQLite (result codes 5 and 6, with their extended codes). Decided on
/// the codes the engines define, never on the words of their messages.
pub fn is_lost_race(err: &DbErr) -> bool {
    let database_error = match err {
        DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
        | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e))
        | DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e)) => e.as_database_error(),
        _ => None,
    };
    let Some(database_error) = database_error else {
        return false;
    };
    if let Some(postgres) = database_error.try_downcast_ref::<sea_orm::SqlxPostgresError>() {
        return lost_race_on_postgres(postgres.code());
    }
    if database_error
        .try_downcast_ref::<sea_orm::SqlxSqliteError>()
        .is_some()
    {
        return database_error
            .code()
            .is_some_and(|code| lost_race_on_sqlite(&code));
    }
    false
}

/// PostgreSQL: serialization failure or deadlock detected.
fn lost_race_on_postgres(sqlstate: &str) -> bool {
    matches!(sqlstate, "40001" | "40P01")
}

/// SQLite: busy or locked (its extended result code's low byte is the primary code).
fn lost_race_on_sqlite(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::internal(err)
    }
}

#[cfg(test)]
mod race_tests {
    use super::{lost_race_on_postgres, lost_race_on_sqlite};

    #[test]
    fn lost_races_are_told_by_each_engines_own_codes() {
        assert!(lost_race_on_postgres("40001"));
        assert!(lost_race_on_postgres("40P01"));
        // Numeric SQLSTATEs are not SQLite result codes: insufficient privilege, bad
        // character and division by zero are not races.
        for code in ["42501", "22021", "22012", "23505", "5", "6"] {
            assert!(!lost_race_on_postgres(code), "{code}");
        }
        assert!(lost_race_on_sqlite("5"));
        assert!(lost_race_on_sqlite("6"));
        assert!(lost_race_on_sqlite("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(lost_race_on_sqlite("262")); // SQLITE_LOCKED_SHAREDCACHE
        for code in ["19", "2067", "1", "40001"] {
            assert!(!lost_race_on_sqlite(code), "{code}");
        }
    }
}
