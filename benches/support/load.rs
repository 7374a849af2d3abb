//! Loads a synthetic estate straight into a migrated database (no API, no audit): the
//! starting point of the read benchmarks.

#![allow(dead_code)]

use std::collections::HashMap;

use cmdb::domain::ci_class::ClassCatalog;
use cmdb::domain::relationship_type::TypeCatalog;
use entity::values::LifecycleStatus;
use entity::{configuration_item, relationship, service, service_member};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use serde_json::json;
use uuid::Uuid;

use super::estate;

/// Inserts the estate's CIs, relationships and services; returns the CIs' ids by key.
pub async fn load_estate(db: &DatabaseConnection, estate: &estate::Estate) -> Vec<Uuid> {
    let classes = ClassCatalog::load(db).await.expect("classes");
    let types = TypeCatalog::load(db).await.expect("types");
    let at = cmdb::domain::now();
    let ids: Vec<Uuid> = estate.cis.iter().map(|_| Uuid::now_v7()).collect();
    let class_ids: HashMap<&str, i32> = [
        "network_switch",
        "storage",
        "server",
        "virtual_machine",
        "database",
        "application",
        "business_application",
    ]
    .into_iter()
    .map(|name| (name, classes.by_name(name).expect("seeded class").id))
    .collect();
    for chunk in estate.cis.chunks(2_000) {
        let rows = chunk.iter().map(|ci| configuration_item::ActiveModel {
            id: Set(ids[ci.key]),
            class_id: Set(class_ids[ci.class]),
            name: Set(ci.name.clone()),
            description: Set(None),
            status: Set(LifecycleStatus::InService),
            environment: Set(Some("production".into())),
            criticality: Set(None),
            owner: Set(Some("bench".into())),
            attributes: Set(ci.attributes.clone()),
            version: Set(1),
            created_at: Set(at),
            updated_at: Set(at),
            provenance: Set(json!({})),
        });
        configuration_item::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await
            .expect("insert CIs");
    }
    let type_ids: HashMap<&str, i32> = types
        .all()
        .iter()
        .map(|t| (t.name.as_str(), t.id))
        .collect();
    for chunk in estate.relationships.chunks(5_000) {
        let rows = chunk.iter().map(|r| relationship::ActiveModel {
            id: Set(Uuid::now_v7()),
            source_id: Set(ids[r.source]),
            target_id: Set(ids[r.target]),
            type_id: Set(type_ids[r.kind]),
            attributes: Set(json!({})),
            created_at: Set(at),
        });
        relationship::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await
            .expect("insert relationships");
    }
    for s in &estate.services {
        let id = Uuid::now_v7();
        service::Entity::insert(service::ActiveModel {
            id: Set(id),
            name: Set(s.name.clone()),
            kind: Set(entity::values::ServiceKind::Business),
            description: Set(None),
            owner: Set(None),
            criticality: Set(Some(entity::values::Criticality::High)),
            version: Set(1),
            created_at: Set(at),
            updated_at: Set(at),
        })
        .exec_without_returning(db)
        .await
        .expect("insert service");
        let members = s.members.iter().map(|m| service_member::ActiveModel {
            service_id: Set(id),
            ci_id: Set(ids[*m]),
            added_at: Set(at),
        });
        service_member::Entity::insert_many(members)
            .exec_without_returning(db)
            .await
            .expect("insert members");
    }
    ids
}
