//! API tokens through GraphQL (admins only; see `access`).

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::{actor, db};
use std::sync::Arc;

use crate::domain::auth::{self, Role, TokenCache, TokenInfo};

/// What a token may do.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "Role")]
pub enum TokenRole {
    /// Reads everything.
    Viewer,
    /// Reads, and sends discovery batches (`upsertConfigurationItems`).
    Discovery,
    /// Reads, and edits CIs, relationships, services and incidents.
    Editor,
    /// An editor who also assesses and approves changes.
    ChangeManager,
    /// Everything, including the catalogue, reconciliation rules and tokens.
    Admin,
}

/// An API token as listed: never the token itself, which is shown only once.
pub struct ApiToken(pub TokenInfo);

/// An API token as listed: never the token itself, which is shown only once.
#[Object]
impl ApiToken {
    /// Identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique name; recorded as the actor of the token's writes.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the token may do.
    async fn role(&self) -> Result<TokenRole> {
        Ok(Role::parse(&self.0.role)?.into())
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it was revoked; null while it works.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

/// A new token.
#[derive(InputObject)]
pub struct CreateApiTokenInput {
    /// Unique name, such as `vcenter-sync` or `alice`.
    pub name: String,
    /// What it may do.
    pub role: TokenRole,
}

/// A token just created.
#[derive(SimpleObject)]
pub struct CreatedApiToken {
    /// The token: send it as `Authorization: Bearer <token>`. Shown this once only.
    pub token: String,
    /// Its record.
    pub api_token: ApiToken,
}

/// Token queries.
#[derive(Default)]
pub struct TokenQuery;

/// Token queries.
#[Object]
impl TokenQuery {
    /// Every API token, by name.
    async fn api_tokens(&self, ctx: &Context<'_>) -> Result<Vec<ApiToken>> {
        Ok(auth::list(db(ctx)?)
            .await?
            .into_iter()
            .map(ApiToken)
            .collect())
    }
}

/// Token management.
#[derive(Default)]
pub struct TokenMutation;

/// Token management.
#[Object]
impl TokenMutation {
    /// Creates a token and returns it, once.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        input: CreateApiTokenInput,
    ) -> Result<CreatedApiToken> {
        let (token, info) =
            auth::create(db(ctx)?, &actor(ctx), &input.name, input.role.into()).await?;
        Ok(CreatedApiToken {
            token,
            api_token: ApiToken(info),
        })
    }

    /// Revokes a token; it stops working within seconds on every server instance.
    async fn revoke_api_token(&self, ctx: &Context<'_>, name: String) -> Result<ApiToken> {
        let revoked = auth::revoke(db(ctx)?, &actor(ctx), &name).await?;
        if let Some(cache) = ctx.data_opt::<Arc<TokenCache>>() {
            cache.forget(&name);
        }
        Ok(ApiToken(revoked))
    }
}
