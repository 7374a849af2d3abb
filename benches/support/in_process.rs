//! The server in the benchmark's own process, on a database the benchmark prepared, with a
//! client holding a token of the given role.

#![allow(dead_code)]

use cmdb::domain::auth::Role;
use cmdb::http::{AppState, HttpOptions, app};
use cmdb::limits::Limits;
use sea_orm::DatabaseConnection;

/// Serves `db` on a free port; returns the GraphQL URL and a client with a `role` token.
pub async fn serve(
    db: &DatabaseConnection,
    role: Role,
    max_body_bytes: usize,
) -> (String, reqwest::Client) {
    let limits = Limits::default();
    let router = app(
        AppState::new(db.clone(), limits),
        &HttpOptions {
            max_body_bytes,
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/graphql", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    let (token, _) =
        cmdb::domain::auth::create(db, &cmdb::domain::audit::Actor::system(), "bench", role)
            .await
            .expect("a token");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header"),
    );
    let client = cmdb::http_client_builder()
        .pool_max_idle_per_host(1)
        .default_headers(headers)
        .build()
        .expect("client");
    (url, client)
}
