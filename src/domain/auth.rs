//! Access control: API tokens and the roles they carry.
//!
//! A token is `cmdb_` followed by 64 random hex digits. It is shown once, when created; the
//! database keeps only its SHA-256 hash, so a stolen database does not yield usable tokens.
//! Random 256-bit tokens need no slow password hash: there is nothing to guess.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::api_token::{self, Column, Entity};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::audit::{Action, Actor, EntityType, Event};
use super::clock::Clock;
use super::unit_of_work::UnitOfWork;
use super::{Error, Result, now, required_text};

/// What a token may do. Each role includes the rights of those before it, except that
/// `discovery` may only read and upsert discovered CIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Reads everything.
    Viewer,
    /// Reads, and sends discovery batches.
    Discovery,
    /// Reads, and edits CIs, relationships, services and incidents.
    Editor,
    /// An editor who also assesses and approves changes.
    ChangeManager,
    /// Everything, including the catalogue, reconciliation rules and tokens.
    Admin,
}

/// A right that an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Discover,
    Edit,
    ManageChanges,
    Administer,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Discovery,
        Role::Editor,
        Role::ChangeManager,
        Role::Admin,
    ];

    /// The name used on the command line and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Discovery => "discovery",
            Role::Editor => "editor",
            Role::ChangeManager => "change_manager",
            Role::Admin => "admin",
        }
    }

    /// The role of that name.
    pub fn parse(name: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    format!(
                        "`{name}` is not a role: viewer, discovery, editor, change_manager or admin"
                    ),
                )
            })
    }

    /// Whether the role grants the permission.
    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => true,
            Permission::Discover => matches!(self, Role::Discovery | Role::Admin),
            Permission::Edit => matches!(self, Role::Editor | Role::ChangeManager | Role::Admin),
            Permission::ManageChanges => matches!(self, Role::ChangeManager | Role::Admin),
            Permission::Administer => self == Role::Admin,
        }
    }
}

/// Who is calling: a token's name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// The actor the audit trail records for this principal.
    pub fn actor(&self) -> Actor {
        Actor::named(&self.name)
    }
}

/// The SHA-256 of a token, in hex: what the database keeps.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> String {
    // Two version-4 UUIDs: 244 random bits from the operating system's generator.
    format!(
        "cmdb_{}{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    )
}

/// A token as listed: never the token itself.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&api_token::Model> for TokenInfo {
    fn from(model: &api_token::Model) -> Self {
        TokenInfo {
            id: model.id,
            name: model.name.clone(),
            role: model.role.clone(),
            created_at: model.created_at,
            revoked_at: model.revoked_at,
        }
    }
}

/// Creates a token; returns it (to show once) and its record.
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    name: &str,
    role: Role,
) -> Result<(String, TokenInfo)> {
    let name = required_text("name", name, 100)?;
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    if Entity::find()
        .filter(Column::Name.eq(name.as_str()))
        .count(txn)
        .await?
        > 0
    {
        return Err(Error::Conflict(format!(
            "a token named `{name}` already exists"
        )));
    }
    let token = new_token();
    let model = api_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name),
        role: Set(role.as_str().to_owned()),
        token_hash: Set(hash(&token)),
        created_at: Set(now()),
        revoked_at: Set(None),
    }
    .insert(txn)
    .await?;
    let info = TokenInfo::from(&model);
    uow.record(Event::new(
        EntityType::ApiToken,
        model.id,
        Action::Create,
        None,
        Some(&info),
    )?);
    uow.commit().await?;
    Ok((token, info))
}

/// Every token, by name.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<TokenInfo>> {
    Ok(Entity::find()
        .order_by_asc(Column::Name)
        .all(db)
        .await?
        .iter()
        .map(TokenInfo::from)
        .collect())
}

/// The token with this id, if any (its hash stays inside).
pub async fn find(db: &impl ConnectionTrait, id: uuid::Uuid) -> Result<Option<TokenInfo>> {
    Ok(Entity::find_by_id(id)
        .one(db)
        .await?
        .as_ref()
        .map(TokenInfo::from))
}

/// Whether any token that is not revoked exists (a new install has none).
pub async fn any_active(db: &impl ConnectionTrait) -> Result<bool> {
    Ok(Entity::find()
        .filter(Column::RevokedAt.is_null())
        .count(db)
        .await?
        > 0)
}

/// Revokes the token of that name; it stops working at once on this instance and within
/// the authentication cache's lifetime on the others.
pub async fn revoke(db: &DatabaseConnection, actor: &Actor, name: &str) -> Result<TokenInfo> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let model = super::lock_row(txn, Entity::find().filter(Column::Name.eq(name)))
        .await?
        .ok_or_else(|| Error::not_found("API token", name))?;
    if model.revoked_at.is_some() {
        return Ok(TokenInfo::from(&model));
    }
    let before = TokenInfo::from(&model);
    let mut active: api_token::ActiveModel = model.into();
    active.revoked_at = Set(Some(now()));
    let model = active.update(txn).await?;
    let after = TokenInfo::from(&model);
    uow.record(Event::new(
        EntityType::ApiToken,
        model.id,
        Action::Update,
        Some(&before),
        Some(&after),
    )?);
    uow.commit().await?;
    Ok(after)
}

/// The principal a token stands for, if the token is known and not revoked.
pub async fn authenticate(db: &impl ConnectionTrait, token: &str) -> Result<Option<Principal>> {
    let found = Entity::find()
        .filter(Column::TokenHash.eq(hash(token)))
        .filter(Column::RevokedAt.is_null())
        .one(db)
        .await?;
    Ok(match found {
        Some(model) => Some(Principal {
            name: model.name,
            role: Role::parse(&model.role)?,
        }),
        None => None,
    })
}

/// How long a verified token is trusted without asking the database again: the bound on
/// how long a revocation made on another server instance takes to reach this one (a
/// revocation through this instance takes effect at once).
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(5);

/// Verified tokens, by hash, for [`TOKEN_CACHE_TTL`], so that a request does not cost a
/// database lookup. A revocation through this instance takes effect at once.
pub struct TokenCache {
    db: DatabaseConnection,
    clock: Clock,
    /// Tells when tokens changed anywhere (a revocation then takes effect at once);
    /// without one, or while it is not listening, entries last [`TOKEN_CACHE_TTL`].
    watch: Option<std::sync::Arc<super::changes::ChangeWatch>>,
    verified: Mutex<HashMap<String, (Principal, Duration, Mark)>>,
    /// Tokens found unknown (or revoked), so that a flood of made-up tokens costs no
    /// database lookup each. Safe to keep: a token is never created with a known hash.
    unknown: Mutex<HashMap<String, (Duration, Mark)>>,
    /// Grows with every forgetting: a lookup that started before a revocation must not put
    /// its (by then stale) answer back in the cache.
    generation: std::sync::atomic::AtomicU64,
}

use super::changes::{Mark, Topic};

/// Most entries each map of the token cache keeps; beyond, it starts afresh.
const TOKEN_CACHE_ENTRIES: usize = 10_000;

impl TokenCache {
    /// An empty cache over the tokens of `db`, whose entries expire by `clock`.
    pub fn new(db: DatabaseConnection, clock: Clock) -> Self {
        TokenCache {
            db,
            clock,
            watch: None,
            verified: Mutex::new(HashMap::new()),
            unknown: Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The same cache, told of token changes by `watch`.
    pub fn watched(
        db: DatabaseConnection,
        clock: Clock,
        watch: std::sync::Arc<super::changes::ChangeWatch>,
    ) -> Self {
        TokenCache {
            watch: Some(watch),
            ..Self::new(db, clock)
        }
    }

    /// Whether an entry made at `at` with `mark` still holds: within its lifetime, and no
    /// token changed since when the watch can tell.
    fn holds(&self, now: Duration, at: Duration, mark: Mark) -> bool {
        let within = now.saturating_sub(at) < TOKEN_CACHE_TTL;
        match (&self.watch, mark) {
            (Some(watch), Some(_)) => within && watch.unchanged_since(Topic::Tokens, mark),
            // Checked while the watch was not listening: good for its lifetime only while
            // it still is not; once it listens, the watch knows better than the clock, and
            // a revocation it has heard of since must not wait for the entry to expire.
            (Some(watch), None) => within && !watch.listening(),
            (None, _) => within,
        }
    }

    /// The principal a token stands for, if it is known and not revoked.
    pub async fn principal(&self, token: &str) -> Result<Option<Principal>> {
        use std::sync::atomic::Ordering;
        let key = hash(token);
        let now = self.clock.elapsed();
        if let Ok(verified) = self.verified.lock()
            && let Some((principal, at, mark)) = verified.get(&key)
            && self.holds(now, *at, *mark)
        {
            return Ok(Some(principal.clone()));
        }
        if let Ok(unknown) = self.unknown.lock()
            && unknown
                .get(&key)
                .is_some_and(|(at, mark)| self.holds(now, *at, *mark))
        {
            return Ok(None);
        }
        let mark = self.watch.as_ref().and_then(|w| w.mark(Topic::Tokens));
        let generation = self.generation.load(Ordering::SeqCst);
        let principal = authenticate(&self.db, token).await?;
        let (Ok(mut verified), Ok(mut unknown)) = (self.verified.lock(), self.unknown.lock())
        else {
            return Ok(principal);
        };
        // Forgotten meanwhile: answer, but keep nothing.
        if self.generation.load(Ordering::SeqCst) != generation {
            return Ok(principal);
        }
        match &principal {
            Some(principal) => {
                if verified.len() >= TOKEN_CACHE_ENTRIES {
                    verified.clear();
                }
                verified.insert(key, (principal.clone(), now, mark));
            }
            None => {
                verified.remove(&key);
                if unknown.len() >= TOKEN_CACHE_ENTRIES {
                    unknown.clear();
                }
                unknown.insert(key, (now, mark));
            }
        }
        Ok(principal)
    }

    /// Forgets every verified token of that name (it was just revoked).
    pub fn forget(&self, name: &str) {
        use std::sync::atomic::Ordering;
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut verified) = self.verified.lock() {
            verified.retain(|_, (principal, _, _)| principal.name != name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_has_exactly_its_rights() {
        use Permission::*;
        let table = [
            (Role::Viewer, [true, false, false, false, false]),
            (Role::Discovery, [true, true, false, false, false]),
            (Role::Editor, [true, false, true, false, false]),
            (Role::ChangeManager, [true, false, true, true, false]),
            (Role::Admin, [true, true, true, true, true]),
        ];
        for (role, expected) in table {
            let got = [Read, Discover, Edit, ManageChanges, Administer].map(|p| role.allows(p));
            assert_eq!(got, expected, "{role:?}");
        }
    }

    #[test]
    fn roles_parse_back_and_tokens_are_random_and_hashed() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()).ok(), Some(role));
        }
        assert!(Role::parse("root").is_err());
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("cmdb_") && a.len() == 69);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
    }
}
