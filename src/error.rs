//! The one error type of the domain layer. Each variant has a stable `code()` that clients
//! switch on; the GraphQL layer maps it to `extensions.code` in exactly one place.
//!
//! Invariant: the `Display` text of every variant is safe to show to a client. Database and
//! other infrastructure failures become `Internal`, whose text is only "internal error"; the
//! cause is kept for the server's log.

use std::sync::Arc;

use sea_orm::{DbErr, SqlErr};

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
    /// Anything the client cannot fix. The cause is logged, never shown.
    #[error("internal error")]
    Internal(Arc<anyhow::Error>),
}

impl Error {
    /// The stable machine-readable code of this error, sent as `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "NOT_FOUND",
            Error::Validation { .. } => "VALIDATION",
            Error::Conflict(_) => "CONFLICT",
            Error::VersionMismatch { .. } => "VERSION_MISMATCH",
            Error::InvalidTransition(_) => "INVALID_TRANSITION",
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::LimitExceeded(_) => "LIMIT_EXCEEDED",
            Error::AmbiguousIdentity(_) => "AMBIGUOUS_IDENTITY",
            Error::BatchRejected(_) => "BATCH_REJECTED",
            Error::ParseFailed(_) => "GRAPHQL_PARSE_FAILED",
            Error::Internal(_) => "INTERNAL",
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
    let Some(code) = database_error.code() else {
        return false;
    };
    match code.as_ref() {
        "40001" | "40P01" => true,
        // SQLite reports its extended result code; the primary code is its low byte.
        other => other
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6)),
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::internal(err)
    }
}
