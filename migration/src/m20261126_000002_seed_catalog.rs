//! The default catalog: CI classes and relationship types every new database starts with.
//!
//! They are data, not code: users may edit or extend them through the API afterwards, and a
//! later release that wants a different default adds a new migration rather than editing this.

use sea_orm_migration::prelude::*;
use serde_json::{Value as Json, json};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CiClass {
    Table,
    Id,
    Name,
    Label,
    Description,
    ParentId,
    Attributes,
    IdentifierAttributes,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RelationshipType {
    Table,
    Name,
    InverseLabel,
    Propagation,
    Description,
    CreatedAt,
    UpdatedAt,
}

/// One seeded class; parents are listed before their children.
struct SeedClass {
    name: &'static str,
    label: &'static str,
    parent: Option<&'static str>,
    description: &'static str,
    attributes: Json,
    identifiers: &'static [&'static str],
}

fn attribute(name: &str, kind: &str, description: &str) -> Json {
    json!({ "name": name, "type": kind, "required": false, "description": description })
}

fn seed_classes() -> Vec<SeedClass> {
    vec![
        SeedClass {
            name: "computer",
            label: "Computer",
            parent: None,
            description: "Any machine that runs an operating system, physical or virtual.",
            attributes: json!([
                attribute("fqdn", "STRING", "Fully qualified domain name"),
                attribute("ip_address", "STRING", "Primary IP address"),
                attribute("os", "STRING", "Operating system and version"),
                attribute("cpu_count", "INTEGER", "Number of logical CPUs"),
                attribute("memory_gb", "FLOAT", "Memory in GiB"),
            ]),
            identifiers: &["fqdn"],
        },
        SeedClass {
            name: "server",
            label: "Server",
            parent: Some("computer"),
            description: "A physical server, often a hypervisor host.",
            attributes: json!([
                attribute("serial_number", "STRING", "Manufacturer serial number"),
                attribute("manufacturer", "STRING", "Hardware manufacturer"),
                attribute("model", "STRING", "Hardware model"),
                attribute("location", "STRING", "Data centre, room and rack"),
            ]),
            identifiers: &["serial_number", "fqdn"],
        },
        SeedClass {
            name: "virtual_machine",
            label: "Virtual machine",
            parent: Some("computer"),
            description: "A virtual machine hosted on a hypervisor or a cloud.",
            attributes: json!([
                attribute(
                    "vm_uuid",
                    "STRING",
                    "The hypervisor's or cloud's identifier of the VM"
                ),
                attribute(
                    "cloud_region",
                    "STRING",
                    "Cloud region, when the VM runs in a cloud"
                ),
            ]),
            identifiers: &["vm_uuid", "fqdn"],
        },
        SeedClass {
            name: "network_device",
            label: "Network device",
            parent: None,
            description: "Network equipment.",
            attributes: json!([
                attribute("serial_number", "STRING", "Manufacturer serial number"),
                attribute("management_ip", "STRING", "Management IP address"),
                attribute("manufacturer", "STRING", "Hardware manufacturer"),
                attribute("model", "STRING", "Hardware model"),
                attribute("location", "STRING", "Data centre, room and rack"),
            ]),
            identifiers: &["serial_number"],
        },
        SeedClass {
            name: "network_switch",
            label: "Network switch",
            parent: Some("network_device"),
            description: "A switch connecting servers and other network devices.",
            attributes: json!([attribute("port_count", "INTEGER", "Number of ports")]),
            identifiers: &["serial_number"],
        },
        SeedClass {
            name: "router",
            label: "Router",
            parent: Some("network_device"),
            description: "A router or firewall between networks.",
            attributes: json!([]),
            identifiers: &["serial_number"],
        },
        SeedClass {
            name: "load_balancer",
            label: "Load balancer",
            parent: Some("network_device"),
            description: "Spreads traffic over a pool of back ends.",
            attributes: json!([attribute(
                "virtual_ip",
                "STRING",
                "Virtual IP address served"
            )]),
            identifiers: &["serial_number"],
        },
        SeedClass {
            name: "storage",
            label: "Storage",
            parent: None,
            description: "A storage array, SAN or NAS.",
            attributes: json!([
                attribute("serial_number", "STRING", "Manufacturer serial number"),
                attribute("capacity_tb", "FLOAT", "Usable capacity in TB"),
                attribute("manufacturer", "STRING", "Hardware manufacturer"),
                attribute("model", "STRING", "Hardware model"),
            ]),
            identifiers: &["serial_number"],
        },
        SeedClass {
            name: "cluster",
            label: "Cluster",
            parent: None,
            description: "A group of redundant members that together provide one capability.",
            attributes: json!([attribute(
                "min_healthy_members",
                "INTEGER",
                "How many members must be up for the cluster to serve"
            )]),
            identifiers: &[],
        },
        SeedClass {
            name: "application",
            label: "Application",
            parent: None,
            description: "A deployed piece of software: a web front end, an API, a batch job.",
            attributes: json!([
                attribute("version", "STRING", "Deployed version"),
                attribute("url", "STRING", "Where users or clients reach it"),
                attribute("repository", "STRING", "Source code repository"),
            ]),
            identifiers: &["url"],
        },
        SeedClass {
            name: "database",
            label: "Database",
            parent: None,
            description: "A database instance or schema.",
            attributes: json!([
                attribute("engine", "STRING", "Database engine, e.g. postgresql"),
                attribute("engine_version", "STRING", "Engine version"),
                attribute("port", "INTEGER", "Listening port"),
            ]),
            identifiers: &[],
        },
        SeedClass {
            name: "container",
            label: "Container",
            parent: None,
            description: "A container or pod running an image.",
            attributes: json!([
                attribute("image", "STRING", "Container image reference"),
                attribute("container_id", "STRING", "The runtime's identifier"),
            ]),
            identifiers: &["container_id"],
        },
        SeedClass {
            name: "business_application",
            label: "Business application",
            parent: None,
            description: "An application as the business knows it, made of technical parts.",
            attributes: json!([
                attribute(
                    "business_owner",
                    "STRING",
                    "Accountable person in the business"
                ),
                attribute("vendor", "STRING", "Vendor, for bought software"),
            ]),
            identifiers: &[],
        },
    ]
}

/// (name, inverse label, propagation, description)
const SEED_RELATIONSHIP_TYPES: &[(&str, &str, &str, &str)] = &[
    (
        "depends_on",
        "used_by",
        "TARGET_TO_SOURCE",
        "The source needs the target to work.",
    ),
    (
        "runs_on",
        "runs",
        "TARGET_TO_SOURCE",
        "Software (source) runs on a computer or container (target).",
    ),
    (
        "hosted_on",
        "hosts",
        "TARGET_TO_SOURCE",
        "A virtual machine or container (source) is hosted on a host (target).",
    ),
    (
        "connected_to",
        "connects",
        "TARGET_TO_SOURCE",
        "A device (source) is connected to a network device (target) it needs.",
    ),
    (
        "uses",
        "used_by",
        "TARGET_TO_SOURCE",
        "The source uses the target, for example storage or a shared service.",
    ),
    (
        "routes_to",
        "receives_from",
        "TARGET_TO_SOURCE",
        "A load balancer or router (source) sends traffic to a back end (target).",
    ),
    (
        "contains",
        "contained_in",
        "SOURCE_TO_TARGET",
        "The source physically or logically contains the target (a rack, a cluster).",
    ),
    (
        "member_of",
        "has_member",
        "SOURCE_TO_TARGET",
        "The source is one member of a group such as a cluster.",
    ),
    (
        "backed_up_by",
        "backs_up",
        "NONE",
        "The target holds backups of the source; losing it does not stop the source.",
    ),
    (
        "replicates_to",
        "replica_of",
        "NONE",
        "The source replicates its data to the target.",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let now = chrono::Utc::now();
        for class in seed_classes() {
            let parent_id = match class.parent {
                Some(parent) => Expr::SubQuery(
                    None,
                    Box::new(
                        Query::select()
                            .column(CiClass::Id)
                            .from(CiClass::Table)
                            .and_where(Expr::col(CiClass::Name).eq(parent))
                            .to_owned()
                            .into_sub_query_statement(),
                    ),
                ),
                None => Expr::value(Option::<i32>::None),
            };
            let identifiers: Vec<&str> = class.identifiers.to_vec();
            let insert = Query::insert()
                .into_table(CiClass::Table)
                .columns([
                    CiClass::Name,
                    CiClass::Label,
                    CiClass::Description,
                    CiClass::ParentId,
                    CiClass::Attributes,
                    CiClass::IdentifierAttributes,
                    CiClass::CreatedAt,
                    CiClass::UpdatedAt,
                ])
                .values([
                    class.name.into(),
                    class.label.into(),
                    class.description.into(),
                    parent_id,
                    class.attributes.into(),
                    json!(identifiers).into(),
                    now.into(),
                    now.into(),
                ])
                .map_err(|e| DbErr::Migration(e.to_string()))?
                .to_owned();
            db.execute(&insert).await?;
        }

        let mut insert = Query::insert();
        insert.into_table(RelationshipType::Table).columns([
            RelationshipType::Name,
            RelationshipType::InverseLabel,
            RelationshipType::Propagation,
            RelationshipType::Description,
            RelationshipType::CreatedAt,
            RelationshipType::UpdatedAt,
        ]);
        for (name, inverse, propagation, description) in SEED_RELATIONSHIP_TYPES {
            insert
                .values([
                    (*name).into(),
                    (*inverse).into(),
                    (*propagation).into(),
                    (*description).into(),
                    now.into(),
                    now.into(),
                ])
                .map_err(|e| DbErr::Migration(e.to_string()))?;
        }
        db.execute(&insert).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let names: Vec<&str> = SEED_RELATIONSHIP_TYPES.iter().map(|t| t.0).collect();
        db.execute(
            &Query::delete()
                .from_table(RelationshipType::Table)
                .and_where(Expr::col(RelationshipType::Name).is_in(names))
                .to_owned(),
        )
        .await?;
        // Children first, so that no parent is removed while a child still points at it.
        for class in seed_classes().iter().rev() {
            db.execute(
                &Query::delete()
                    .from_table(CiClass::Table)
                    .and_where(Expr::col(CiClass::Name).eq(class.name))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
