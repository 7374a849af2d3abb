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

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::internal(err)
    }
}
