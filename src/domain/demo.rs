//! The demo estate: a small but realistic organisation, so that a new user gets real answers
//! in the first minute. Three business services (an online shop, payroll, customer support)
//! and a technical one (the data-centre network), over applications, databases, VMs,
//! hypervisor hosts, switches, a load balancer and a storage array. The shop's web and API
//! tiers run on redundant clusters (any one of two web VMs, any two of three API VMs), so
//! losing one host degrades the shop rather than stopping it.
//!
//! Loaded through the ordinary domain functions, in one transaction, only into a database
//! that holds no configuration item yet.

use std::collections::HashMap;

use chrono::{Datelike, TimeDelta, Weekday};
use entity::values::{ChangeType, Criticality, Level, PriorityTarget, ServiceKind};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use uuid::Uuid;

use super::audit::Actor;
use super::impact::GraphCache;
use super::relationship::NewRelationship;
use super::service::NewService;
use super::unit_of_work::UnitOfWork;
use super::{Result, change, ci, customer, incident, relationship, service};
use super::{now, service_level};
use crate::limits::Limits;

/// What [`load`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoOutcome {
    /// The estate was loaded.
    Loaded {
        cis: usize,
        relationships: usize,
        services: usize,
    },
    /// The database already held CIs; nothing was written.
    Skipped { existing_cis: u64 },
}

/// (key and name, class, environment, owner, criticality, attributes)
type DemoCi = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<Criticality>,
    Value,
);

fn cis() -> Vec<DemoCi> {
    use Criticality::*;
    let prod = "production";
    vec![
        (
            "sw-core-01",
            "network_switch",
            prod,
            "network-team",
            Some(High),
            json!({"serial_number": "FOC2231X0AB", "manufacturer": "Cisco", "model": "Nexus 9336C", "port_count": 36, "location": "DC1 / row A / rack 1"}),
        ),
        (
            "sw-core-02",
            "network_switch",
            prod,
            "network-team",
            Some(High),
            json!({"serial_number": "FOC2231X0AC", "manufacturer": "Cisco", "model": "Nexus 9336C", "port_count": 36, "location": "DC1 / row A / rack 2"}),
        ),
        (
            "san-01",
            "storage",
            prod,
            "storage-team",
            Some(High),
            json!({"serial_number": "NTAP-88231", "manufacturer": "NetApp", "model": "AFF A400", "capacity_tb": 120.0}),
        ),
        (
            "esx-01",
            "server",
            prod,
            "platform-team",
            Some(High),
            json!({"serial_number": "CZ2041ABCD", "fqdn": "esx-01.dc1.example.com", "ip_address": "10.0.1.11", "manufacturer": "HPE", "model": "ProLiant DL380 Gen10", "cpu_count": 64, "memory_gb": 768.0, "os": "VMware ESXi 8.0"}),
        ),
        (
            "esx-02",
            "server",
            prod,
            "platform-team",
            Some(High),
            json!({"serial_number": "CZ2041ABCE", "fqdn": "esx-02.dc1.example.com", "ip_address": "10.0.1.12", "manufacturer": "HPE", "model": "ProLiant DL380 Gen10", "cpu_count": 64, "memory_gb": 768.0, "os": "VMware ESXi 8.0"}),
        ),
        (
            "esx-03",
            "server",
            prod,
            "platform-team",
            Some(High),
            json!({"serial_number": "CZ2041ABCF", "fqdn": "esx-03.dc1.example.com", "ip_address": "10.0.1.13", "manufacturer": "HPE", "model": "ProLiant DL380 Gen10", "cpu_count": 64, "memory_gb": 768.0, "os": "VMware ESXi 8.0"}),
        ),
        (
            "lb-shop-01",
            "load_balancer",
            prod,
            "network-team",
            Some(Critical),
            json!({"serial_number": "F5-7781-22", "manufacturer": "F5", "model": "BIG-IP i5800", "virtual_ip": "203.0.113.10"}),
        ),
        (
            "shop-web-01",
            "virtual_machine",
            prod,
            "shop-team",
            None,
            json!({"vm_uuid": "4205a1c2-0001-4b7e-9d0e-000000000001", "fqdn": "shop-web-01.dc1.example.com", "ip_address": "10.0.2.21", "os": "Ubuntu 24.04", "cpu_count": 4, "memory_gb": 8.0}),
        ),
        (
            "shop-web-02",
            "virtual_machine",
            prod,
            "shop-team",
            None,
            json!({"vm_uuid": "4205a1c2-0002-4b7e-9d0e-000000000002", "fqdn": "shop-web-02.dc1.example.com", "ip_address": "10.0.2.22", "os": "Ubuntu 24.04", "cpu_count": 4, "memory_gb": 8.0}),
        ),
        (
            "shop-api-01",
            "virtual_machine",
            prod,
            "shop-team",
            None,
            json!({"vm_uuid": "4205a1c2-0003-4b7e-9d0e-000000000003", "fqdn": "shop-api-01.dc1.example.com", "ip_address": "10.0.2.31", "os": "Ubuntu 24.04", "cpu_count": 8, "memory_gb": 16.0}),
        ),
        (
            "shop-api-02",
            "virtual_machine",
            prod,
            "shop-team",
            None,
            json!({"vm_uuid": "4205a1c2-0004-4b7e-9d0e-000000000004", "fqdn": "shop-api-02.dc1.example.com", "ip_address": "10.0.2.32", "os": "Ubuntu 24.04", "cpu_count": 8, "memory_gb": 16.0}),
        ),
        (
            "shop-api-03",
            "virtual_machine",
            prod,
            "shop-team",
            None,
            json!({"vm_uuid": "4205a1c2-0009-4b7e-9d0e-000000000009", "fqdn": "shop-api-03.dc1.example.com", "ip_address": "10.0.2.33", "os": "Ubuntu 24.04", "cpu_count": 8, "memory_gb": 16.0}),
        ),
        (
            "shop-web-cluster",
            "cluster",
            prod,
            "shop-team",
            Some(Critical),
            json!({"min_healthy_members": 1}),
        ),
        (
            "shop-api-cluster",
            "cluster",
            prod,
            "shop-team",
            Some(Critical),
            json!({"min_healthy_members": 2}),
        ),
        (
            "db-vm-01",
            "virtual_machine",
            prod,
            "dba-team",
            None,
            json!({"vm_uuid": "4205a1c2-0005-4b7e-9d0e-000000000005", "fqdn": "db-vm-01.dc1.example.com", "ip_address": "10.0.3.11", "os": "Rocky Linux 9", "cpu_count": 16, "memory_gb": 64.0}),
        ),
        (
            "pay-app-vm",
            "virtual_machine",
            prod,
            "hr-it-team",
            None,
            json!({"vm_uuid": "4205a1c2-0006-4b7e-9d0e-000000000006", "fqdn": "pay-app.dc1.example.com", "ip_address": "10.0.4.11", "os": "Windows Server 2022", "cpu_count": 4, "memory_gb": 16.0}),
        ),
        (
            "pay-db-vm",
            "virtual_machine",
            prod,
            "dba-team",
            None,
            json!({"vm_uuid": "4205a1c2-0007-4b7e-9d0e-000000000007", "fqdn": "pay-db.dc1.example.com", "ip_address": "10.0.4.12", "os": "Rocky Linux 9", "cpu_count": 8, "memory_gb": 32.0}),
        ),
        (
            "support-vm",
            "virtual_machine",
            prod,
            "support-it-team",
            None,
            json!({"vm_uuid": "4205a1c2-0008-4b7e-9d0e-000000000008", "fqdn": "support.dc1.example.com", "ip_address": "10.0.5.11", "os": "Ubuntu 24.04", "cpu_count": 4, "memory_gb": 8.0}),
        ),
        (
            "shop-frontend",
            "application",
            prod,
            "shop-team",
            Some(Critical),
            json!({"version": "3.14.2", "url": "https://shop.example.com", "repository": "git.example.com/shop/frontend"}),
        ),
        (
            "shop-api",
            "application",
            prod,
            "shop-team",
            Some(Critical),
            json!({"version": "2.8.0", "url": "https://api.shop.example.com", "repository": "git.example.com/shop/api"}),
        ),
        (
            "shop-db",
            "database",
            prod,
            "dba-team",
            Some(Critical),
            json!({"engine": "postgresql", "engine_version": "16.4", "port": 5432}),
        ),
        (
            "payroll-app",
            "application",
            prod,
            "hr-it-team",
            Some(High),
            json!({"version": "2025.2", "url": "https://payroll.example.com"}),
        ),
        (
            "payroll-db",
            "database",
            prod,
            "dba-team",
            Some(High),
            json!({"engine": "mssql", "engine_version": "2022", "port": 1433}),
        ),
        (
            "support-portal",
            "application",
            prod,
            "support-it-team",
            Some(Medium),
            json!({"version": "5.1.0", "url": "https://support.example.com"}),
        ),
        (
            "webshop",
            "business_application",
            prod,
            "e-commerce",
            Some(Critical),
            json!({"business_owner": "Head of E-commerce"}),
        ),
    ]
}

/// (source, type, target)
const RELATIONSHIPS: &[(&str, &str, &str)] = &[
    ("esx-01", "connected_to", "sw-core-01"),
    ("esx-02", "connected_to", "sw-core-01"),
    ("esx-02", "connected_to", "sw-core-02"),
    ("esx-03", "connected_to", "sw-core-02"),
    ("lb-shop-01", "connected_to", "sw-core-01"),
    ("esx-01", "uses", "san-01"),
    ("esx-02", "uses", "san-01"),
    ("esx-03", "uses", "san-01"),
    ("shop-web-01", "hosted_on", "esx-01"),
    ("shop-web-02", "hosted_on", "esx-02"),
    ("shop-api-01", "hosted_on", "esx-01"),
    ("shop-api-02", "hosted_on", "esx-02"),
    ("db-vm-01", "hosted_on", "esx-03"),
    ("pay-app-vm", "hosted_on", "esx-03"),
    ("pay-db-vm", "hosted_on", "esx-02"),
    ("support-vm", "hosted_on", "esx-03"),
    ("shop-api-03", "hosted_on", "esx-03"),
    ("shop-web-01", "member_of", "shop-web-cluster"),
    ("shop-web-02", "member_of", "shop-web-cluster"),
    ("shop-api-01", "member_of", "shop-api-cluster"),
    ("shop-api-02", "member_of", "shop-api-cluster"),
    ("shop-api-03", "member_of", "shop-api-cluster"),
    ("shop-frontend", "runs_on", "shop-web-cluster"),
    ("shop-api", "runs_on", "shop-api-cluster"),
    ("shop-db", "runs_on", "db-vm-01"),
    ("payroll-app", "runs_on", "pay-app-vm"),
    ("payroll-db", "runs_on", "pay-db-vm"),
    ("support-portal", "runs_on", "support-vm"),
    ("lb-shop-01", "routes_to", "shop-frontend"),
    ("shop-frontend", "depends_on", "shop-api"),
    ("shop-api", "depends_on", "shop-db"),
    ("payroll-app", "depends_on", "payroll-db"),
    ("support-portal", "depends_on", "shop-db"),
    ("webshop", "depends_on", "lb-shop-01"),
    ("shop-db", "backed_up_by", "san-01"),
    ("payroll-db", "backed_up_by", "san-01"),
];

/// (name, kind, criticality, owner, description, members)
type DemoService = (
    &'static str,
    ServiceKind,
    Criticality,
    &'static str,
    &'static str,
    &'static [&'static str],
);

const SERVICES: &[DemoService] = &[
    (
        "Online Shop",
        ServiceKind::Business,
        Criticality::Critical,
        "e-commerce",
        "The public web shop: catalogue, basket, checkout.",
        &[
            "webshop",
            "lb-shop-01",
            "shop-frontend",
            "shop-api",
            "shop-db",
        ],
    ),
    (
        "Payroll",
        ServiceKind::Business,
        Criticality::High,
        "hr",
        "Monthly salaries and payslips for all staff.",
        &["payroll-app", "payroll-db"],
    ),
    (
        "Customer Support",
        ServiceKind::Business,
        Criticality::Medium,
        "customer-care",
        "The support portal customers use to raise and follow tickets.",
        &["support-portal"],
    ),
    (
        "Data Centre Network",
        ServiceKind::Technical,
        Criticality::High,
        "network-team",
        "Core switching in DC1.",
        &["sw-core-01", "sw-core-02"],
    ),
];

/// Loads the demo estate unless the database already holds CIs.
pub async fn load(db: &DatabaseConnection, actor: &Actor) -> Result<DemoOutcome> {
    let uow = UnitOfWork::begin(db, actor).await?;
    let txn = uow.txn();
    let existing_cis = entity::configuration_item::Entity::find()
        .count(txn)
        .await?;
    if existing_cis > 0 {
        return Ok(DemoOutcome::Skipped { existing_cis });
    }
    let mut ids: HashMap<&str, Uuid> = HashMap::new();
    let demo_cis = cis();
    for (name, class, environment, owner, criticality, attributes) in &demo_cis {
        let created = ci::create_in(
            &uow,
            ci::NewCi {
                class: (*class).to_owned(),
                name: (*name).to_owned(),
                environment: Some((*environment).to_owned()),
                owner: Some((*owner).to_owned()),
                criticality: *criticality,
                attributes: Some(attributes.clone()),
                ..Default::default()
            },
        )
        .await?;
        ids.insert(name, created.id);
    }
    let limits = Limits::default();
    let new_relationships = RELATIONSHIPS
        .iter()
        .map(|(source, kind, target)| NewRelationship {
            source_id: ids[source],
            target_id: ids[target],
            type_name: (*kind).to_owned(),
            attributes: None,
        })
        .collect();
    let relationships = relationship::create_many_in(&uow, new_relationships, &limits).await?;
    for (name, kind, criticality, owner, description, members) in SERVICES {
        service::create_in(
            &uow,
            NewService {
                name: (*name).to_owned(),
                kind: *kind,
                description: Some((*description).to_owned()),
                owner: Some((*owner).to_owned()),
                criticality: Some(*criticality),
                member_ids: members.iter().map(|m| ids[m]).collect(),
            },
            &limits,
        )
        .await?;
    }
    let service_ids = service_ids(txn).await?;
    load_service_management(&uow, &ids, &service_ids, &limits).await?;
    uow.commit().await?;
    give_history(db, actor, ids["payroll-db"]).await?;
    Ok(DemoOutcome::Loaded {
        cis: demo_cis.len(),
        relationships: relationships.len(),
        services: SERVICES.len(),
    })
}

/// A little history to look back on: a baseline of the estate as loaded, then a patch of
/// the payroll database after it (so `baselineDiff(from: "demo-loaded")` has an answer).
async fn give_history(db: &DatabaseConnection, actor: &Actor, payroll_db: Uuid) -> Result<()> {
    super::history::baseline::create(
        db,
        actor,
        super::history::baseline::NewBaseline {
            name: "demo-loaded".into(),
            description: Some("The demo estate as loaded".into()),
            scope: Default::default(),
        },
    )
    .await?;
    let patch = ci::CiChanges {
        attribute_patch: Some(serde_json::json!({ "patch_level": "2026-12" })),
        ..Default::default()
    };
    ci::update(db, actor, payroll_db, None, patch).await?;
    Ok(())
}

async fn service_ids(db: &impl sea_orm::ConnectionTrait) -> Result<HashMap<String, Uuid>> {
    Ok(entity::service::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.name, s.id))
        .collect())
}

/// (customer, contact, email, [(service, agreement)])
type DemoCustomer = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const CUSTOMERS: &[DemoCustomer] = &[
    (
        "Retail Division",
        "Grace Hopper",
        "grace.hopper@example.com",
        &[("Online Shop", "Platinum"), ("Customer Support", "Gold")],
    ),
    (
        "Finance",
        "Ada Lovelace",
        "ada.lovelace@example.com",
        &[("Payroll", "Gold")],
    ),
    (
        "Human Resources",
        "Alan Turing",
        "alan.turing@example.com",
        &[("Payroll", "Silver")],
    ),
];

/// (service, availability %, [(priority, response minutes, resolution minutes)])
type DemoServiceLevel = (&'static str, f64, &'static [(i32, i64, i64)]);

const SERVICE_LEVELS: &[DemoServiceLevel] = &[
    (
        "Online Shop",
        99.9,
        &[(1, 15, 240), (2, 30, 480), (3, 120, 1_440)],
    ),
    (
        "Payroll",
        99.5,
        &[(1, 30, 480), (2, 60, 960), (3, 240, 2_880)],
    ),
    ("Customer Support", 99.0, &[(2, 60, 960), (3, 240, 2_880)]),
];

/// Customers, service levels, an open incident and a change waiting for approval, so that
/// incidents, changes and reports have something to show.
async fn load_service_management(
    uow: &UnitOfWork,
    cis: &HashMap<&str, Uuid>,
    services: &HashMap<String, Uuid>,
    limits: &Limits,
) -> Result<()> {
    for (name, contact, email, consumed) in CUSTOMERS {
        let created = customer::create_in(
            uow,
            customer::NewCustomer {
                name: (*name).to_owned(),
                contact_name: Some((*contact).to_owned()),
                contact_email: Some((*email).to_owned()),
                description: None,
            },
        )
        .await?;
        for (service, agreement) in *consumed {
            customer::subscribe_in(
                uow,
                created.id,
                services[*service],
                Some((*agreement).to_owned()),
            )
            .await?;
        }
    }
    for (service, availability, targets) in SERVICE_LEVELS {
        let targets = targets
            .iter()
            .map(|(priority, response, resolution)| PriorityTarget {
                priority: *priority,
                response_minutes: Some(*response),
                resolution_minutes: Some(*resolution),
            })
            .collect();
        service_level::set_in(uow, services[*service], Some(*availability), targets).await?;
    }
    // The graph as this transaction sees it: a fresh cache reads it whole.
    let cache = GraphCache::new();
    let opened = incident::create_in(
        uow,
        &cache,
        limits,
        incident::NewIncident {
            title: "Checkout fails with HTTP 502 for some customers".into(),
            description: Some("Since 09:40 about one checkout in ten fails.".into()),
            impact: None,
            urgency: Level::High,
            major: false,
            assignee_group: Some("e-commerce".into()),
            ci_ids: vec![cis["shop-api-02"]],
            services: Vec::new(),
            opened_at: Some(now() - TimeDelta::minutes(45)),
        },
    )
    .await?;
    incident::transition_in(
        uow,
        opened.id,
        None,
        entity::values::IncidentState::InProgress,
        Some(now() - TimeDelta::minutes(30)),
        None,
    )
    .await?;
    // Next Saturday, 22:00 to midnight.
    let today = now().date_naive();
    let days_ahead =
        (7 + Weekday::Sat.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
    let saturday = today + TimeDelta::days(i64::from(days_ahead.max(1)));
    let start = saturday
        .and_hms_opt(22, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(now);
    let planned = change::create_in(
        uow,
        limits,
        change::NewChange {
            title: "Firmware upgrade of hypervisor host esx-02".into(),
            description: Some("Vendor advisory: upgrade the BIOS and BMC firmware.".into()),
            change_type: ChangeType::Normal,
            planned_start: Some(start),
            planned_end: Some(start + TimeDelta::hours(2)),
            implementation_plan: Some(
                "Evacuate the VMs to esx-01 and esx-03, upgrade, reboot, move the VMs back.".into(),
            ),
            backout_plan: Some("Flash the previous firmware image kept on the BMC.".into()),
            ci_ids: vec![cis["esx-02"]],
        },
    )
    .await?;
    change::transition_in(
        uow,
        &cache,
        limits,
        planned.id,
        None,
        entity::values::ChangeState::Submitted,
        change::TransitionDetails::default(),
    )
    .await?;
    Ok(())
}
