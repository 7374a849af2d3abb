//! Writing `affectedCis` straight into the response.
//!
//! An impact report can list thousands of CIs, each with a path. Resolved field by field,
//! async-graphql spends about a microsecond per field; a report of 5,000 CIs with paths has
//! around 80,000 fields. When the selection asks only for what the report itself knows
//! (depth, state, the CIs' ids, names, statuses and classes, the path's relationships with
//! their types and ends), [`plan`] accepts it and [`write`] builds the response value
//! directly. Any other selection (arguments, directives, fragments, other fields) is
//! refused by [`plan`] and resolved the ordinary way, with the same result.

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Selection, SelectionSet};
use async_graphql::{Name, Value};
use entity::values::{LifecycleStatus, Propagation};
use uuid::Uuid;

use crate::domain::ci_class::ClassCatalog;
use crate::domain::impact::analysis::ImpactState;
use crate::domain::impact::graph::Graph;
use crate::domain::impact::{AffectedCi, PathStep};
use crate::domain::relationship_type::TypeCatalog;

/// A field of a class.
#[derive(Debug, Clone, Copy)]
enum ClassField {
    Typename,
    Id,
    Name,
    Label,
}

/// A field of a CI.
#[derive(Debug, Clone)]
enum CiField {
    Typename,
    Id,
    Name,
    Status,
    Class(Vec<(Name, ClassField)>),
}

/// A field of a relationship type.
#[derive(Debug, Clone, Copy)]
enum TypeField {
    Typename,
    Id,
    Name,
    InverseLabel,
    Propagation,
}

/// A field of a relationship in a path.
#[derive(Debug, Clone)]
enum StepField {
    Typename,
    Id,
    Type(Vec<(Name, TypeField)>),
    Source(Vec<(Name, CiField)>),
    Target(Vec<(Name, CiField)>),
}

/// A field of an affected CI.
#[derive(Debug, Clone)]
enum EntryField {
    Typename,
    Depth,
    State,
    Ci(Vec<(Name, CiField)>),
    Path(Vec<(Name, StepField)>),
}

/// What the selection asks for, when it can be written directly.
#[derive(Debug, Clone)]
pub struct Plan {
    fields: Vec<(Name, EntryField)>,
    /// Whether the classes' catalogue is needed.
    pub needs_classes: bool,
    /// Whether the relationship types' catalogue is needed.
    pub needs_types: bool,
}

/// The plain fields of a selection set: (response key, name, sub-selection). `None` when
/// anything but plain fields without arguments or directives is selected.
fn plain_fields(set: &SelectionSet) -> Option<Vec<(Name, &str, &SelectionSet)>> {
    set.items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(field)
                if field.node.arguments.is_empty() && field.node.directives.is_empty() =>
            {
                Some((
                    field.node.response_key().node.clone(),
                    field.node.name.node.as_str(),
                    &field.node.selection_set.node,
                ))
            }
            _ => None,
        })
        .collect()
}

fn leaf<T>(set: &SelectionSet, field: T) -> Option<T> {
    set.items.is_empty().then_some(field)
}

fn class_plan(set: &SelectionSet) -> Option<Vec<(Name, ClassField)>> {
    plain_fields(set)?
        .into_iter()
        .map(|(key, name, sub)| {
            let field = match name {
                "__typename" => ClassField::Typename,
                "id" => ClassField::Id,
                "name" => ClassField::Name,
                "label" => ClassField::Label,
                _ => return None,
            };
            Some((key, leaf(sub, field)?))
        })
        .collect()
}

fn ci_plan(set: &SelectionSet, plan: &mut Plan) -> Option<Vec<(Name, CiField)>> {
    plain_fields(set)?
        .into_iter()
        .map(|(key, name, sub)| {
            let field = match name {
                "__typename" => leaf(sub, CiField::Typename)?,
                "id" => leaf(sub, CiField::Id)?,
                "name" => leaf(sub, CiField::Name)?,
                "status" => leaf(sub, CiField::Status)?,
                "ciClass" => {
                    plan.needs_classes = true;
                    CiField::Class(class_plan(sub)?)
                }
                _ => return None,
            };
            Some((key, field))
        })
        .collect()
}

fn type_plan(set: &SelectionSet) -> Option<Vec<(Name, TypeField)>> {
    plain_fields(set)?
        .into_iter()
        .map(|(key, name, sub)| {
            let field = match name {
                "__typename" => TypeField::Typename,
                "id" => TypeField::Id,
                "name" => TypeField::Name,
                "inverseLabel" => TypeField::InverseLabel,
                "propagation" => TypeField::Propagation,
                _ => return None,
            };
            Some((key, leaf(sub, field)?))
        })
        .collect()
}

fn step_plan(set: &SelectionSet, plan: &mut Plan) -> Option<Vec<(Name, StepField)>> {
    plain_fields(set)?
        .into_iter()
        .map(|(key, name, sub)| {
            let field = match name {
                "__typename" => leaf(sub, StepField::Typename)?,
                "id" => leaf(sub, StepField::Id)?,
                "type" => {
                    plan.needs_types = true;
                    StepField::Type(type_plan(sub)?)
                }
                "source" => StepField::Source(ci_plan(sub, plan)?),
                "target" => StepField::Target(ci_plan(sub, plan)?),
                _ => return None,
            };
            Some((key, field))
        })
        .collect()
}

/// The plan for the selection set of `affectedCis`, if it can be written directly.
pub fn plan(set: &SelectionSet) -> Option<Plan> {
    let mut plan = Plan {
        fields: Vec::new(),
        needs_classes: false,
        needs_types: false,
    };
    let mut fields = Vec::new();
    for (key, name, sub) in plain_fields(set)? {
        let field = match name {
            "__typename" => leaf(sub, EntryField::Typename)?,
            "depth" => leaf(sub, EntryField::Depth)?,
            "state" => leaf(sub, EntryField::State)?,
            "ci" => EntryField::Ci(ci_plan(sub, &mut plan)?),
            "path" => EntryField::Path(step_plan(sub, &mut plan)?),
            _ => return None,
        };
        fields.push((key, field));
    }
    plan.fields = fields;
    Some(plan)
}

/// The catalogues and graph the values come from.
pub struct Sources<'a> {
    pub graph: &'a Graph,
    pub classes: Option<&'a ClassCatalog>,
    pub types: Option<&'a TypeCatalog>,
}

fn enum_value(name: &str) -> Value {
    Value::Enum(Name::new(name))
}

/// The GraphQL name of an impact state.
pub fn state_name(state: ImpactState) -> &'static str {
    match state {
        ImpactState::Dependency => "DEPENDENCY",
        ImpactState::Degraded => "DEGRADED",
        ImpactState::Down => "DOWN",
    }
}

fn status_name(status: LifecycleStatus) -> &'static str {
    match status {
        LifecycleStatus::Planned => "PLANNED",
        LifecycleStatus::InService => "IN_SERVICE",
        LifecycleStatus::UnderMaintenance => "UNDER_MAINTENANCE",
        LifecycleStatus::Retired => "RETIRED",
    }
}

fn propagation_name(propagation: Propagation) -> &'static str {
    match propagation {
        Propagation::TargetToSource => "TARGET_TO_SOURCE",
        Propagation::SourceToTarget => "SOURCE_TO_TARGET",
        Propagation::Both => "BOTH",
        Propagation::None => "NONE",
    }
}

fn class_value(fields: &[(Name, ClassField)], class_id: i32, sources: &Sources) -> Value {
    let Some(class) = sources.classes.and_then(|c| c.get(class_id)) else {
        return Value::Null;
    };
    let mut object = IndexMap::with_capacity(fields.len());
    for (key, field) in fields {
        let value = match field {
            ClassField::Typename => Value::String("CiClass".into()),
            ClassField::Id => Value::String(class.id.to_string()),
            ClassField::Name => Value::String(class.name.clone()),
            ClassField::Label => Value::String(class.label.clone()),
        };
        object.insert(key.clone(), value);
    }
    Value::Object(object)
}

/// `None` when the graph does not know the CI (the ordinary path then reports it).
fn ci_value(fields: &[(Name, CiField)], id: Uuid, sources: &Sources) -> Option<Value> {
    let node = sources.graph.node(&id)?;
    let mut object = IndexMap::with_capacity(fields.len());
    for (key, field) in fields {
        let value = match field {
            CiField::Typename => Value::String("ConfigurationItem".into()),
            CiField::Id => Value::String(id.to_string()),
            CiField::Name => Value::String(node.name.to_string()),
            CiField::Status => enum_value(status_name(node.status?)),
            CiField::Class(class) => class_value(class, node.class_id, sources),
        };
        object.insert(key.clone(), value);
    }
    Some(Value::Object(object))
}

fn type_value(fields: &[(Name, TypeField)], type_id: i32, sources: &Sources) -> Option<Value> {
    let found = sources.types?.get(type_id)?;
    let mut object = IndexMap::with_capacity(fields.len());
    for (key, field) in fields {
        let value = match field {
            TypeField::Typename => Value::String("RelationshipType".into()),
            TypeField::Id => Value::String(found.id.to_string()),
            TypeField::Name => Value::String(found.name.clone()),
            TypeField::InverseLabel => Value::String(found.inverse_label.clone()),
            TypeField::Propagation => enum_value(propagation_name(found.propagation)),
        };
        object.insert(key.clone(), value);
    }
    Some(Value::Object(object))
}

fn step_value(fields: &[(Name, StepField)], step: &PathStep, sources: &Sources) -> Option<Value> {
    let mut object = IndexMap::with_capacity(fields.len());
    for (key, field) in fields {
        let value = match field {
            StepField::Typename => Value::String("Relationship".into()),
            StepField::Id => Value::String(step.id.to_string()),
            StepField::Type(fields) => type_value(fields, step.type_id, sources)?,
            StepField::Source(fields) => ci_value(fields, step.source, sources)?,
            StepField::Target(fields) => ci_value(fields, step.target, sources)?,
        };
        object.insert(key.clone(), value);
    }
    Some(Value::Object(object))
}

/// The response value of the affected CIs, or `None` if something is missing from the
/// sources (then the ordinary path resolves it and reports what is missing).
pub fn write(plan: &Plan, entries: &[AffectedCi], sources: &Sources) -> Option<Value> {
    let mut list = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut object = IndexMap::with_capacity(plan.fields.len());
        for (key, field) in &plan.fields {
            let value = match field {
                EntryField::Typename => Value::String("AffectedCi".into()),
                EntryField::Depth => Value::from(entry.depth),
                EntryField::State => enum_value(state_name(entry.state)),
                EntryField::Ci(fields) => ci_value(fields, entry.ci_id, sources)?,
                EntryField::Path(fields) => Value::List(
                    entry
                        .path
                        .iter()
                        .map(|step| step_value(fields, step, sources))
                        .collect::<Option<Vec<_>>>()?,
                ),
            };
            object.insert(key.clone(), value);
        }
        list.push(Value::Object(object));
    }
    Some(Value::List(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(query: &str) -> SelectionSet {
        let document = async_graphql::parser::parse_query(query).expect("a valid query");
        let (_, operation) = document.operations.iter().next().expect("an operation");
        operation.node.selection_set.node.clone()
    }

    #[test]
    fn plain_selections_are_planned_and_others_are_left_to_the_resolvers() {
        let set = selection(
            "{ depth state ci { id name ciClass { name } } path { id type { name } source { name } } }",
        );
        let planned = plan(&set).expect("a plan");
        assert!(planned.needs_classes && planned.needs_types);
        assert!(
            plan(&selection("{ depth ci { attributes } }")).is_none(),
            "attributes need the record"
        );
        assert!(plan(&selection("{ depth @include(if: true) }")).is_none());
        assert!(plan(&selection("{ ... on AffectedCi { depth } }")).is_none());
        assert!(plan(&selection("{ ci { outgoing { id } } }")).is_none());
    }
}
