//! The one mapping from domain errors to GraphQL errors, and the extension that gives a
//! `code` to the errors async-graphql raises itself (syntax, validation, limits).
//!
//! The crate is built with async-graphql's `custom-error-conversion` feature: a bare `?` on
//! an arbitrary error does not compile, so no error reaches a client without a code.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensionValues, Response, ServerError, ServerResult, ValidationResult, Variables,
};

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

/// Code of a syntax error in the GraphQL document.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// Code of a document that does not fit the schema (unknown field, wrong argument type).
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";

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
fn limit_error(error: ServerError) -> ServerError {
    let named = match error.message.as_str() {
        "Query is nested too deep." => {
            Some("the query is nested too deep (limit `max_query_depth`)")
        }
        "Query is too complex." => Some("the query is too complex (limit `max_query_complexity`)"),
        _ => None,
    };
    match named {
        Some(message) => with_code(
            ServerError {
                message: message.to_owned(),
                ..error
            },
            "LIMIT_EXCEEDED",
        ),
        None => with_code(error, VALIDATION_FAILED),
    }
}

/// Gives every error that async-graphql raises on its own a stable `code`.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, PARSE_FAILED))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx)
            .await
            .map_err(|errors| errors.into_iter().map(limit_error).collect())
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        // Errors without a code at this stage come from coercing argument values, which
        // our resolvers never see: they are bad input.
        let mut response = next.run(ctx, operation_name).await;
        response.errors = response
            .errors
            .into_iter()
            .map(|e| with_code(e, "VALIDATION"))
            .collect();
        response
    }
}
