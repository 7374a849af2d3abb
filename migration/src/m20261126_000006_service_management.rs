//! Service management on top of the CMDB (ISO/IEC 20000): incidents, requests for change and
//! their approvals, service level targets, customers, and the data they need (the priority
//! matrix and the number sequences of human-readable record numbers).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ConfigurationItem {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Service {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum NumberSequence {
    Table,
    Name,
    NextValue,
}

#[derive(DeriveIden)]
enum PriorityRule {
    Table,
    Impact,
    Urgency,
    Priority,
}

#[derive(DeriveIden)]
enum Incident {
    Table,
    Id,
    Number,
    Title,
    Description,
    Impact,
    Urgency,
    Priority,
    SuggestedImpact,
    Major,
    AssigneeGroup,
    State,
    ResolutionNotes,
    OpenedAt,
    AcknowledgedAt,
    ResolvedAt,
    ClosedAt,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IncidentCi {
    Table,
    IncidentId,
    CiId,
}

#[derive(DeriveIden)]
enum IncidentService {
    Table,
    IncidentId,
    ServiceId,
    Origin,
    State,
}

#[derive(DeriveIden)]
enum ChangeRequest {
    Table,
    Id,
    Number,
    Title,
    Description,
    ChangeType,
    State,
    Risk,
    PlannedStart,
    PlannedEnd,
    ImplementationPlan,
    BackoutPlan,
    Outcome,
    ReviewNotes,
    Assessment,
    AssessedAt,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ChangeCi {
    Table,
    ChangeId,
    CiId,
}

#[derive(DeriveIden)]
enum ChangeService {
    Table,
    ChangeId,
    ServiceId,
    State,
}

#[derive(DeriveIden)]
enum ChangeApproval {
    Table,
    Id,
    ChangeId,
    Decision,
    Approver,
    Comment,
    DecidedAt,
}

#[derive(DeriveIden)]
enum ServiceLevel {
    Table,
    ServiceId,
    AvailabilityTarget,
    Targets,
    Version,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Customer {
    Table,
    Id,
    Name,
    ContactName,
    ContactEmail,
    Description,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CustomerService {
    Table,
    CustomerId,
    ServiceId,
    Agreement,
    AddedAt,
}

/// The usual impact x urgency matrix: P1 when both are high, P5 when both are low.
const PRIORITY_MATRIX: [(&str, &str, i32); 9] = [
    ("HIGH", "HIGH", 1),
    ("HIGH", "MEDIUM", 2),
    ("MEDIUM", "HIGH", 2),
    ("HIGH", "LOW", 3),
    ("MEDIUM", "MEDIUM", 3),
    ("LOW", "HIGH", 3),
    ("MEDIUM", "LOW", 4),
    ("LOW", "MEDIUM", 4),
    ("LOW", "LOW", 5),
];

fn cascade(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: &[DynIden],
) -> Result<(), DbErr> {
    let mut statement = Index::create();
    statement.name(name).table(table);
    for column in columns {
        statement.col(column.clone());
    }
    manager.create_index(statement.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(NumberSequence::Table)
                    .col(string_len(NumberSequence::Name, 32).primary_key())
                    .col(big_integer(NumberSequence::NextValue))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(NumberSequence::Table)
                    .columns([NumberSequence::Name, NumberSequence::NextValue])
                    .values_panic(["INC".into(), 1i64.into()])
                    .values_panic(["CHG".into(), 1i64.into()])
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PriorityRule::Table)
                    .col(string_len(PriorityRule::Impact, 16))
                    .col(string_len(PriorityRule::Urgency, 16))
                    .col(integer(PriorityRule::Priority))
                    .primary_key(
                        Index::create()
                            .col(PriorityRule::Impact)
                            .col(PriorityRule::Urgency),
                    )
                    .to_owned(),
            )
            .await?;
        let mut seed = Query::insert();
        seed.into_table(PriorityRule::Table).columns([
            PriorityRule::Impact,
            PriorityRule::Urgency,
            PriorityRule::Priority,
        ]);
        for (impact, urgency, priority) in PRIORITY_MATRIX {
            seed.values_panic([impact.into(), urgency.into(), priority.into()]);
        }
        manager.exec_stmt(seed.to_owned()).await?;

        manager
            .create_table(
                Table::create()
                    .table(Incident::Table)
                    .col(pk_uuid(Incident::Id))
                    .col(string_len_uniq(Incident::Number, 32))
                    .col(string_len(Incident::Title, 255))
                    .col(text_null(Incident::Description))
                    .col(string_len(Incident::Impact, 16))
                    .col(string_len(Incident::Urgency, 16))
                    .col(integer(Incident::Priority))
                    .col(string_len_null(Incident::SuggestedImpact, 16))
                    .col(boolean(Incident::Major))
                    .col(string_len_null(Incident::AssigneeGroup, 255))
                    .col(string_len(Incident::State, 32))
                    .col(text_null(Incident::ResolutionNotes))
                    .col(timestamp_with_time_zone(Incident::OpenedAt))
                    .col(timestamp_with_time_zone_null(Incident::AcknowledgedAt))
                    .col(timestamp_with_time_zone_null(Incident::ResolvedAt))
                    .col(timestamp_with_time_zone_null(Incident::ClosedAt))
                    .col(integer(Incident::Version))
                    .col(timestamp_with_time_zone(Incident::CreatedAt))
                    .col(timestamp_with_time_zone(Incident::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_incident_state",
            Incident::Table,
            &[Incident::State.into_iden()],
        )
        .await?;
        index(
            manager,
            "ix_incident_opened",
            Incident::Table,
            &[Incident::OpenedAt.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(IncidentCi::Table)
                    .col(uuid(IncidentCi::IncidentId))
                    .col(uuid(IncidentCi::CiId))
                    .primary_key(
                        Index::create()
                            .col(IncidentCi::IncidentId)
                            .col(IncidentCi::CiId),
                    )
                    .foreign_key(&mut cascade(
                        "fk_incident_ci_incident",
                        (IncidentCi::Table, IncidentCi::IncidentId),
                        (Incident::Table, Incident::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_incident_ci_ci",
                        (IncidentCi::Table, IncidentCi::CiId),
                        (ConfigurationItem::Table, ConfigurationItem::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_incident_ci_ci",
            IncidentCi::Table,
            &[IncidentCi::CiId.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(IncidentService::Table)
                    .col(uuid(IncidentService::IncidentId))
                    .col(uuid(IncidentService::ServiceId))
                    .col(string_len(IncidentService::Origin, 16))
                    .col(string_len(IncidentService::State, 16))
                    .primary_key(
                        Index::create()
                            .col(IncidentService::IncidentId)
                            .col(IncidentService::ServiceId),
                    )
                    .foreign_key(&mut cascade(
                        "fk_incident_service_incident",
                        (IncidentService::Table, IncidentService::IncidentId),
                        (Incident::Table, Incident::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_incident_service_service",
                        (IncidentService::Table, IncidentService::ServiceId),
                        (Service::Table, Service::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_incident_service_service",
            IncidentService::Table,
            &[IncidentService::ServiceId.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ChangeRequest::Table)
                    .col(pk_uuid(ChangeRequest::Id))
                    .col(string_len_uniq(ChangeRequest::Number, 32))
                    .col(string_len(ChangeRequest::Title, 255))
                    .col(text_null(ChangeRequest::Description))
                    .col(string_len(ChangeRequest::ChangeType, 16))
                    .col(string_len(ChangeRequest::State, 32))
                    .col(string_len_null(ChangeRequest::Risk, 16))
                    .col(timestamp_with_time_zone_null(ChangeRequest::PlannedStart))
                    .col(timestamp_with_time_zone_null(ChangeRequest::PlannedEnd))
                    .col(text_null(ChangeRequest::ImplementationPlan))
                    .col(text_null(ChangeRequest::BackoutPlan))
                    .col(string_len_null(ChangeRequest::Outcome, 32))
                    .col(text_null(ChangeRequest::ReviewNotes))
                    .col(json_binary_null(ChangeRequest::Assessment))
                    .col(timestamp_with_time_zone_null(ChangeRequest::AssessedAt))
                    .col(integer(ChangeRequest::Version))
                    .col(timestamp_with_time_zone(ChangeRequest::CreatedAt))
                    .col(timestamp_with_time_zone(ChangeRequest::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_change_request_state",
            ChangeRequest::Table,
            &[ChangeRequest::State.into_iden()],
        )
        .await?;
        index(
            manager,
            "ix_change_request_window",
            ChangeRequest::Table,
            &[
                ChangeRequest::PlannedStart.into_iden(),
                ChangeRequest::PlannedEnd.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ChangeCi::Table)
                    .col(uuid(ChangeCi::ChangeId))
                    .col(uuid(ChangeCi::CiId))
                    .primary_key(Index::create().col(ChangeCi::ChangeId).col(ChangeCi::CiId))
                    .foreign_key(&mut cascade(
                        "fk_change_ci_change",
                        (ChangeCi::Table, ChangeCi::ChangeId),
                        (ChangeRequest::Table, ChangeRequest::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_change_ci_ci",
                        (ChangeCi::Table, ChangeCi::CiId),
                        (ConfigurationItem::Table, ConfigurationItem::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_change_ci_ci",
            ChangeCi::Table,
            &[ChangeCi::CiId.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ChangeService::Table)
                    .col(uuid(ChangeService::ChangeId))
                    .col(uuid(ChangeService::ServiceId))
                    .col(string_len(ChangeService::State, 16))
                    .primary_key(
                        Index::create()
                            .col(ChangeService::ChangeId)
                            .col(ChangeService::ServiceId),
                    )
                    .foreign_key(&mut cascade(
                        "fk_change_service_change",
                        (ChangeService::Table, ChangeService::ChangeId),
                        (ChangeRequest::Table, ChangeRequest::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_change_service_service",
                        (ChangeService::Table, ChangeService::ServiceId),
                        (Service::Table, Service::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_change_service_service",
            ChangeService::Table,
            &[ChangeService::ServiceId.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ChangeApproval::Table)
                    .col(pk_uuid(ChangeApproval::Id))
                    .col(uuid(ChangeApproval::ChangeId))
                    .col(string_len(ChangeApproval::Decision, 16))
                    .col(string_len(ChangeApproval::Approver, 255))
                    .col(text_null(ChangeApproval::Comment))
                    .col(timestamp_with_time_zone(ChangeApproval::DecidedAt))
                    .foreign_key(&mut cascade(
                        "fk_change_approval_change",
                        (ChangeApproval::Table, ChangeApproval::ChangeId),
                        (ChangeRequest::Table, ChangeRequest::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_change_approval_change",
            ChangeApproval::Table,
            &[ChangeApproval::ChangeId.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServiceLevel::Table)
                    .col(uuid(ServiceLevel::ServiceId).primary_key())
                    .col(double_null(ServiceLevel::AvailabilityTarget))
                    .col(json_binary(ServiceLevel::Targets))
                    .col(integer(ServiceLevel::Version))
                    .col(timestamp_with_time_zone(ServiceLevel::UpdatedAt))
                    .foreign_key(&mut cascade(
                        "fk_service_level_service",
                        (ServiceLevel::Table, ServiceLevel::ServiceId),
                        (Service::Table, Service::Id),
                    ))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Customer::Table)
                    .col(pk_uuid(Customer::Id))
                    .col(string_len_uniq(Customer::Name, 255))
                    .col(string_len_null(Customer::ContactName, 255))
                    .col(string_len_null(Customer::ContactEmail, 255))
                    .col(text_null(Customer::Description))
                    .col(integer(Customer::Version))
                    .col(timestamp_with_time_zone(Customer::CreatedAt))
                    .col(timestamp_with_time_zone(Customer::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CustomerService::Table)
                    .col(uuid(CustomerService::CustomerId))
                    .col(uuid(CustomerService::ServiceId))
                    .col(string_len_null(CustomerService::Agreement, 255))
                    .col(timestamp_with_time_zone(CustomerService::AddedAt))
                    .primary_key(
                        Index::create()
                            .col(CustomerService::CustomerId)
                            .col(CustomerService::ServiceId),
                    )
                    .foreign_key(&mut cascade(
                        "fk_customer_service_customer",
                        (CustomerService::Table, CustomerService::CustomerId),
                        (Customer::Table, Customer::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_customer_service_service",
                        (CustomerService::Table, CustomerService::ServiceId),
                        (Service::Table, Service::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_customer_service_service",
            CustomerService::Table,
            &[CustomerService::ServiceId.into_iden()],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CustomerService::Table.into_iden(),
            Customer::Table.into_iden(),
            ServiceLevel::Table.into_iden(),
            ChangeApproval::Table.into_iden(),
            ChangeService::Table.into_iden(),
            ChangeCi::Table.into_iden(),
            ChangeRequest::Table.into_iden(),
            IncidentService::Table.into_iden(),
            IncidentCi::Table.into_iden(),
            Incident::Table.into_iden(),
            PriorityRule::Table.into_iden(),
            NumberSequence::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
