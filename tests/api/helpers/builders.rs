//! Builders of test data: a CI, an incident, a change, each built field by field and
//! created through the API.

use serde_json::{Value, json};

use super::{GqlResponse, TestApp};

/// Builds a CI and creates it through the API.
pub struct CiBuilder {
    input: Value,
}

impl CiBuilder {
    /// A CI of `class` named `name`.
    pub fn new(class: &str, name: &str) -> Self {
        CiBuilder {
            input: json!({ "class": class, "name": name }),
        }
    }

    /// Sets one input field.
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.input[field] = value;
        self
    }

    /// Sets the attributes.
    pub fn attributes(self, attributes: Value) -> Self {
        self.with("attributes", attributes)
    }

    /// The mutation's response, for tests that expect an error.
    pub async fn try_create(self, app: &TestApp) -> GqlResponse {
        app.graphql(
            "mutation($input: CreateConfigurationItemInput!) { createConfigurationItem(input: $input) { id version } }",
            json!({ "input": self.input }),
        )
        .await
    }

    /// Creates the CI; returns its id.
    pub async fn create(self, app: &TestApp) -> String {
        let response = self.try_create(app).await;
        response.data()["createConfigurationItem"]["id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }
}

/// The incident fields tests read back.
pub const INCIDENT_FIELDS: &str = "id number state impact urgency priority priorityLabel
    suggestedImpact major version openedAt acknowledgedAt resolvedAt closedAt resolutionNotes";

/// An incident to open, built field by field.
pub struct IncidentBuilder {
    input: Value,
}

impl IncidentBuilder {
    /// An incident titled `title`.
    pub fn new(title: &str) -> Self {
        IncidentBuilder {
            input: json!({ "title": title }),
        }
    }

    /// Sets one input field.
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.input[field] = value;
        self
    }

    /// The CIs it affects.
    pub fn on(self, ci_ids: &[&str]) -> Self {
        self.with("ciIds", json!(ci_ids))
    }

    /// The mutation's response, for tests that expect an error.
    pub async fn try_create(self, app: &TestApp) -> GqlResponse {
        app.graphql(
            &format!(
                "mutation($input: CreateIncidentInput!) {{ createIncident(input: $input) {{ {INCIDENT_FIELDS} }} }}"
            ),
            json!({ "input": self.input }),
        )
        .await
    }

    /// Opens the incident; returns its fields.
    pub async fn create(self, app: &TestApp) -> Value {
        self.try_create(app).await.data()["createIncident"].clone()
    }
}

/// The change fields tests read back.
pub const CHANGE_FIELDS: &str = "id number type state risk outcome reviewNotes version
    approvals { decision approver comment }";

/// A request for change, built field by field.
pub struct ChangeBuilder {
    input: Value,
}

impl ChangeBuilder {
    /// A normal change titled `title`.
    pub fn new(title: &str) -> Self {
        ChangeBuilder {
            input: json!({ "title": title }),
        }
    }

    /// Sets one input field.
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.input[field] = value;
        self
    }

    /// The CIs it touches.
    pub fn on(self, ci_ids: &[&str]) -> Self {
        self.with("ciIds", json!(ci_ids))
    }

    /// Its planned window.
    pub fn window(self, start: &str, end: &str) -> Self {
        self.with("plannedStart", json!(start))
            .with("plannedEnd", json!(end))
    }

    /// Records the change as a draft; returns its fields.
    pub async fn create(self, app: &TestApp) -> Value {
        app.ok(
            &format!(
                "mutation($input: CreateChangeInput!) {{ createChange(input: $input) {{ {CHANGE_FIELDS} }} }}"
            ),
            json!({ "input": self.input }),
        )
        .await["createChange"]
            .clone()
    }
}
