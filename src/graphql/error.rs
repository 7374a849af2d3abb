//! The one mapping from domain errors to GraphQL errors, and the codes of the errors
//! async-graphql raises itself (syntax, validation, limits).
//!
//! The crate is built with async-graphql's `custom-error-conversion` feature: a bare `?` on
//! an arbitrary error does not compile, so no error reaches a client without a code.

use crate::error::codes;
use async_graphql::{ErrorExtensionValues, ServerError};

use crate::error::Error;

impl From<Error> for async_graphql::Error {
    fn from(err: Error) -> Self {
        if let Error::Internal(cause) = &err {
            tracing::error!(error = ?cause, "internal error");
        }
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", err.code());
        match &err {
            Error::Validation {
                field: Some(field), ..
            }
            | Error::NotFound {
                field: Some(field), ..
            } => extensions.set("field", field.as_str()),
            Error::VersionMismatch { expected, actual } => {
                extensions.set("expectedVersion", *expected);
                extensions.set("actualVersion", *actual);
            }
            _ => {}
        }
        async_graphql::Error {
            message: err.to_string(),
            source: None,
            extensions: Some(extensions),
        }
    }
}

/// Code of a document that does not parse.
pub const PARSE_FAILED: &str = codes::GRAPHQL_PARSE_FAILED;
/// Code of a document that does not fit the schema.
pub const VALIDATION_FAILED: &str = codes::GRAPHQL_VALIDATION_FAILED;

fn with_code(mut error: ServerError, code: &str) -> ServerError {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some());
    if !has_code {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
    error
}

/// Names the limit in async-graphql's own limit messages, which say only "too complex".
fn limit_message(message: &str) -> Option<&'static str> {
    match message {
        "Query is nested too deep." => {
            Some("the query is nested too deep (limit `max_query_depth`)")
        }
        "Query is too complex." => Some("the query is too complex (limit `max_query_complexity`)"),
        _ => None,
    }
}

/// Gives a stable `code` to every error that async-graphql raised on its own: syntax errors,
/// documents that do not fit the schema, exceeded limits, and argument values that could
/// not be coerced. Done after execution rather than in an extension, because an extension
/// puts every field of every response on async-graphql's slower resolution path.
pub fn add_codes(response: &mut async_graphql::Response) {
    if response.errors.is_empty() {
        return;
    }
    for error in std::mem::take(&mut response.errors) {
        let error = if let Some(message) = limit_message(&error.message) {
            with_code(
                ServerError {
                    message: message.to_owned(),
                    ..error
                },
                codes::LIMIT_EXCEEDED,
            )
        } else if error.path.is_empty() {
            // Request-level: documents that do not parse are refused, with their code,
            // before execution; what remains did not validate.
            with_code(error, VALIDATION_FAILED)
        } else {
            // Errors without a code inside execution come from coercing argument values,
            // which our resolvers never see: they are bad input.
            with_code(error, codes::VALIDATION)
        };
        response.errors.push(error);
    }
}

/// Longest error message sent, in characters: messages name parts of the document, and a
/// response must not grow with the size of a hostile one.
const MAX_MESSAGE_CHARS: usize = 500;

/// Keeps at most `max` errors, each message at most [`MAX_MESSAGE_CHARS`] long; when errors
/// were left out, a last one says how many.
pub fn bound_errors(response: &mut async_graphql::Response, max: usize) {
    for error in &mut response.errors {
        if error.message.chars().count() > MAX_MESSAGE_CHARS {
            let mut cut: String = error.message.chars().take(MAX_MESSAGE_CHARS).collect();
            cut.push_str("...");
            error.message = cut;
        }
    }
    let max = max.max(1);
    if response.errors.len() > max {
        let left_out = response.errors.len() - max;
        response.errors.truncate(max);
        let mut summary = ServerError::new(
            format!(
                "{left_out} more errors were left out of this response (limit `max_response_errors`)"
            ),
            None,
        );
        summary
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", codes::LIMIT_EXCEEDED);
        response.errors.push(summary);
    }
}
