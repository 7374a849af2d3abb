//! GraphQL over HTTP as its specification says: the request's parameters from a `POST`
//! body or a `GET` query string, the response's media type chosen from `Accept`, and the
//! status code that goes with each kind of answer.
//!
//! The two media types differ only for requests that did not execute (they did not parse,
//! did not validate, or were refused before running): `application/json` answers them with
//! 200, as older clients expect; `application/graphql-response+json` with a 4xx, so that a
//! client can tell "did not run" from "ran and failed" without reading the body. Neither
//! answer carries a `data` entry then, since nothing ran.

use async_graphql::{Extensions, Request, ServerError, Variables};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::{Error, codes};

/// The media type of a GraphQL response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: request errors get 4xx.
    GraphqlResponse,
    /// `application/json`: every well-formed request gets 200.
    Json,
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

impl Media {
    /// The type the request's `Accept` prefers; `application/json` when it names neither
    /// (or is missing), as the specification asks of a server.
    pub fn negotiate(headers: &HeaderMap) -> Media {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Media::Json;
        };
        let mut best: Option<(f32, Media)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let kind = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let media = match kind.as_str() {
                GRAPHQL_RESPONSE => Media::GraphqlResponse,
                "application/json" | "application/*" | "*/*" => Media::Json,
                _ => continue,
            };
            // On equal quality the first listed wins.
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, media));
            }
        }
        best.map_or(Media::Json, |(_, media)| media)
    }

    fn content_type(self) -> &'static str {
        match self {
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Media::Json => "application/json; charset=utf-8",
        }
    }
}

/// The parameters of a GraphQL request, as both transports carry them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Params {
    query: Option<String>,
    operation_name: Option<String>,
    #[serde(default)]
    variables: Variables,
    #[serde(default)]
    extensions: Extensions,
}

impl Params {
    fn into_request(self) -> Result<Request, Error> {
        let has_hash = self.extensions.contains_key("persistedQuery");
        let query = match self.query {
            Some(query) => query,
            // A persisted query may be named by its hash alone.
            None if has_hash => String::new(),
            None => {
                return Err(Error::ParseFailed(
                    "the request has no `query`: a GraphQL request needs the document to run"
                        .into(),
                ));
            }
        };
        let mut request = Request::new(query).variables(self.variables);
        request.operation_name = self.operation_name;
        request.extensions = self.extensions;
        Ok(request)
    }
}

/// The request in a `POST` body (JSON).
pub fn from_body(bytes: &[u8]) -> Result<Request, Error> {
    let params = serde_json::from_slice::<Params>(bytes).map_err(|err| {
        Error::ParseFailed(format!(
            "the request is not a GraphQL request: the body is not JSON of the right shape \
             (line {}, column {})",
            err.line(),
            err.column()
        ))
    })?;
    params.into_request()
}

/// The request in a `GET` query string: `query`, `operationName`, and `variables` and
/// `extensions` as JSON text.
pub fn from_query_string(raw: &str) -> Result<Request, Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        query: Option<String>,
        operation_name: Option<String>,
        variables: Option<String>,
        extensions: Option<String>,
    }
    let raw: Raw = serde_urlencoded::from_str(raw).map_err(|_| {
        Error::ParseFailed("the query string is not a GraphQL request's parameters".into())
    })?;
    let json = |name: &str, text: Option<String>| -> Result<serde_json::Value, Error> {
        match text {
            None => Ok(serde_json::Value::Null),
            Some(text) => serde_json::from_str(&text).map_err(|_| {
                Error::ParseFailed(format!("the `{name}` parameter is not JSON text"))
            }),
        }
    };
    let params = serde_json::json!({
        "query": raw.query,
        "operationName": raw.operation_name,
        "variables": json("variables", raw.variables)?,
        "extensions": json("extensions", raw.extensions)?,
    });
    let params: Params = serde_json::from_value(params).map_err(|_| {
        Error::ParseFailed(
            "`variables` and `extensions` must be JSON objects in a GET request".into(),
        )
    })?;
    params.into_request()
}

/// A request that never reached GraphQL (a body that is not a GraphQL request, a missing
/// document): 400 whatever the media type, since it was not well-formed.
pub fn malformed(err: Error, media: Media) -> Response {
    with_status(refusal(err, media), StatusCode::BAD_REQUEST)
}

/// An error about the request as a whole, in the shape of every other GraphQL error.
pub fn refusal(err: Error, media: Media) -> Response {
    encode(crate::graphql::refusal(err), media)
}

/// The response with its status changed.
pub fn with_status(mut response: Response, status: StatusCode) -> Response {
    *response.status_mut() = status;
    response
}

/// The HTTP answer to a GraphQL response.
pub fn encode(response: async_graphql::Response, media: Media) -> Response {
    let executed = response.errors.is_empty()
        || response.data != async_graphql::Value::Null
        || response.errors.iter().any(|e| !e.path.is_empty());
    let (status, body) = if executed {
        (StatusCode::OK, serde_json::to_vec(&response))
    } else {
        #[derive(Serialize)]
        struct NotExecuted<'a> {
            errors: &'a [ServerError],
        }
        let code = first_code(&response);
        let body = serde_json::to_vec(&NotExecuted {
            errors: &response.errors,
        });
        (status_of(code, media), body)
    };
    let body = body.unwrap_or_else(|_| br#"{"errors":[{"message":"internal error"}]}"#.to_vec());
    let mut http = (status, body).into_response();
    let headers = http.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.content_type()),
    );
    for (name, value) in response.http_headers.iter() {
        headers.append(name, value.clone());
    }
    http
}

fn first_code(response: &async_graphql::Response) -> &str {
    response
        .errors
        .first()
        .and_then(|e| e.extensions.as_ref()?.get("code"))
        .and_then(|code| match code {
            async_graphql::Value::String(code) => Some(code.as_str()),
            _ => None,
        })
        .unwrap_or(codes::GRAPHQL_VALIDATION_FAILED)
}

/// The status of a request that did not execute, refused with `code`.
fn status_of(code: &str, media: Media) -> StatusCode {
    match code {
        codes::UNAUTHENTICATED => StatusCode::UNAUTHORIZED,
        codes::FORBIDDEN => StatusCode::FORBIDDEN,
        codes::METHOD_NOT_ALLOWED => StatusCode::METHOD_NOT_ALLOWED,
        codes::INTERNAL => StatusCode::SERVICE_UNAVAILABLE,
        _ if media == Media::Json => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    }
}

#[cfg(test)]
mod tests {
    use super::{Media, from_body, from_query_string};
    use axum::http::{HeaderMap, HeaderValue, header};

    fn accepting(accept: &str) -> Media {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(accept).expect("ASCII"),
        );
        Media::negotiate(&headers)
    }

    #[test]
    fn the_response_type_follows_accept() {
        assert_eq!(Media::negotiate(&HeaderMap::new()), Media::Json);
        assert_eq!(accepting("application/json"), Media::Json);
        assert_eq!(accepting("*/*"), Media::Json);
        assert_eq!(accepting("text/html"), Media::Json);
        assert_eq!(
            accepting("application/graphql-response+json, application/json"),
            Media::GraphqlResponse
        );
        assert_eq!(
            accepting("application/graphql-response+json;q=0.5, application/json"),
            Media::Json
        );
        assert_eq!(
            accepting("application/json;q=0.9, application/graphql-response+json"),
            Media::GraphqlResponse
        );
    }

    #[test]
    fn parameters_come_from_a_body_or_a_query_string() {
        let body = from_body(br#"{"query":"{ a }","variables":null,"operationName":null}"#)
            .expect("a request");
        assert_eq!(body.query, "{ a }");
        assert!(from_body(br#"{"qeury":"{ a }"}"#).is_err());
        assert!(from_body(br#"{"query":{"obj":"ect"}}"#).is_err());
        assert!(from_body(br#"{"query":0}"#).is_err());
        let get = from_query_string("query=%7B+a+%7D&variables=%7B%22n%22%3A1%7D&operationName=N")
            .expect("a request");
        assert_eq!(get.query, "{ a }");
        assert_eq!(get.operation_name.as_deref(), Some("N"));
        assert_eq!(get.variables.len(), 1);
        assert!(from_query_string("query=%7B+a+%7D&variables=nope").is_err());
        let by_hash =
            from_query_string("extensions=%7B%22persistedQuery%22%3A%7B%22version%22%3A1%7D%7D")
                .expect("a hash-only request");
        assert!(by_hash.query.is_empty());
    }
}
