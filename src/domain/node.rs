//! What an id names. Records keyed by UUIDs (CIs, relationships, services, incidents,
//! changes, customers, tokens, webhooks, baselines) already have ids unique across every kind, so a client's
//! id is its global id as it stands; one statement finds which kind holds it. Catalogue
//! entries and audit events are numbered per table, so their global ids carry their kind
//! (`CiClass:3`); see [`GlobalId`].

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use super::{Error, Result};

/// The kinds of record a UUID may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UuidKind {
    ConfigurationItem,
    Relationship,
    Service,
    Incident,
    Change,
    Customer,
    ApiToken,
    Webhook,
    Baseline,
}

/// Each kind with its table, in the order they are looked in.
const TABLES: [(UuidKind, &str); 9] = [
    (UuidKind::ConfigurationItem, "configuration_item"),
    (UuidKind::Relationship, "relationship"),
    (UuidKind::Service, "service"),
    (UuidKind::Incident, "incident"),
    (UuidKind::Change, "change_request"),
    (UuidKind::Customer, "customer"),
    (UuidKind::ApiToken, "api_token"),
    (UuidKind::Webhook, "webhook"),
    (UuidKind::Baseline, "baseline"),
];

/// A global id, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalId {
    /// A record keyed by a UUID, of a kind still to be found.
    Uuid(Uuid),
    CiClass(i32),
    RelationshipType(i32),
    AuditEvent(i64),
}

impl GlobalId {
    /// The global id of a CI class.
    pub fn ci_class(id: i32) -> String {
        format!("CiClass:{id}")
    }

    /// The global id of a relationship type.
    pub fn relationship_type(id: i32) -> String {
        format!("RelationshipType:{id}")
    }

    /// The global id of an audit event.
    pub fn audit_event(id: i64) -> String {
        format!("AuditEvent:{id}")
    }

    /// Reads a global id; `VALIDATION` naming `field` when it is none.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        let invalid = || Error::invalid(field, format!("{field}: `{text}` is not a valid id"));
        match text.split_once(':') {
            None => Uuid::parse_str(text)
                .map(GlobalId::Uuid)
                .map_err(|_| invalid()),
            Some(("CiClass", n)) => n.parse().map(GlobalId::CiClass).map_err(|_| invalid()),
            Some(("RelationshipType", n)) => n
                .parse()
                .map(GlobalId::RelationshipType)
                .map_err(|_| invalid()),
            Some(("AuditEvent", n)) => n.parse().map(GlobalId::AuditEvent).map_err(|_| invalid()),
            Some(_) => Err(invalid()),
        }
    }
}

/// Which kind of record holds `id`, if any: one statement, one primary-key probe per table.
pub async fn kind_of(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<UuidKind>> {
    let backend = db.get_database_backend();
    let placeholder = |i: usize| match backend {
        DbBackend::Postgres => format!("${i}"),
        _ => "?".to_owned(),
    };
    let probes: Vec<String> = TABLES
        .iter()
        .enumerate()
        .map(|(i, (_, table))| {
            format!(
                "SELECT {i} AS kind FROM {table} WHERE id = {}",
                placeholder(i + 1)
            )
        })
        .collect();
    let sql = format!("{} LIMIT 1", probes.join(" UNION ALL "));
    let values: Vec<sea_orm::Value> = TABLES.iter().map(|_| id.into()).collect();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let index: i32 = row.try_get("", "kind")?;
    Ok(usize::try_from(index)
        .ok()
        .and_then(|i| TABLES.get(i))
        .map(|(kind, _)| *kind))
}

#[cfg(test)]
mod tests {
    use super::GlobalId;

    #[test]
    fn global_ids_read_back_as_written_and_nothing_else() {
        let uuid = uuid::Uuid::now_v7();
        assert_eq!(
            GlobalId::parse("id", &uuid.to_string()).expect("a UUID"),
            GlobalId::Uuid(uuid)
        );
        assert_eq!(
            GlobalId::parse("id", &GlobalId::ci_class(3)).expect("a class"),
            GlobalId::CiClass(3)
        );
        assert_eq!(
            GlobalId::parse("id", &GlobalId::audit_event(12)).expect("an event"),
            GlobalId::AuditEvent(12)
        );
        for bad in [
            "",
            "3",
            "CiClass:",
            "CiClass:x",
            "Other:1",
            "AuditEvent:1:2",
        ] {
            assert!(GlobalId::parse("id", bad).is_err(), "{bad}");
        }
    }
}
