//! Lean resolution of the objects a nested page is made of.
//!
//! async-graphql resolves every object by boxing one future per selected field and driving
//! them through a fresh `FuturesUnordered`; for the thousands of small objects of a nested
//! page (a relationship, its type, its target, the target's class) that machinery costs
//! more than the data. [`Lean`] resolves the same object with less: the fields whose value
//! is already in hand ([`ReadyFields`]: plain columns, no arguments) are written at once,
//! with the same conversions as the derived resolvers (`ScalarType::to_value`,
//! `enum_value`); only the others become futures, joined in selection order.
//!
//! `Lean<T>` is `T` to the schema (same name and type information), so wrapping a return
//! type changes nothing a client can see; a test compares lean answers with the derived
//! ones. A schema with custom directives takes the derived path.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container};
use async_graphql::{
    Context, ContextSelectionSet, Name, OutputType, Positioned, ServerError, ServerResult, Value,
};

/// The fields of an object whose values need nothing but the object itself, and the
/// object-valued fields it resolves leanly too.
pub trait ReadyFields: Sync {
    /// The value of field `name` when it is ready (a plain field without arguments).
    fn ready_field(&self, name: &str) -> Option<Value>;

    /// Whether field `name` (without arguments) is resolved by [`ReadyFields::lean_field`]:
    /// the hot object-valued fields, whose derived resolver would drag the type's whole
    /// resolver state along.
    fn has_lean_field(&self, _name: &str) -> bool {
        false
    }

    /// Resolves a field [`ReadyFields::has_lean_field`] names (see [`object`]).
    fn lean_field(&self, ctx: &Context<'_>) -> impl Future<Output = ServerResult<Value>> + Send {
        let pos = ctx.item.pos;
        async move {
            Err(ServerError::new(
                "no lean resolver for this field",
                Some(pos),
            ))
        }
    }
}

/// The answer of an object-valued field, as the derived resolvers give it: its error with
/// the field's path, or the object resolved with the field's selection.
pub async fn object<T: OutputType>(
    ctx: &Context<'_>,
    value: async_graphql::Result<T>,
) -> ServerResult<Value> {
    let value = value.map_err(|err| ctx.set_error_path(err.into_server_error(ctx.item.pos)))?;
    let ctx_object = ctx.with_selection_set(&ctx.item.node.selection_set);
    OutputType::resolve(&value, &ctx_object, ctx.item).await
}

/// `T`, resolved leanly. See the module documentation.
pub struct Lean<T>(pub T);

impl<T> From<T> for Lean<T> {
    fn from(value: T) -> Self {
        Lean(value)
    }
}

impl<T: ContainerType + ReadyFields> OutputType for Lean<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        resolve_lean(ctx, &self.0).await
    }
}

type FieldFuture<'a> = Pin<Box<dyn Future<Output = ServerResult<(Name, Value)>> + Send + 'a>>;

/// One selected field: its value already, or the future computing it.
enum Pending<'a> {
    Ready(Name, Value),
    Later(FieldFuture<'a>),
}

async fn resolve_lean<'a, T: ContainerType + ReadyFields>(
    ctx: &ContextSelectionSet<'a>,
    root: &'a T,
) -> ServerResult<Value> {
    // Custom directives hook into each field: the derived path runs them. (`@skip` and
    // `@include` are applied to the document before execution. The schema has no
    // extensions, which would hook in too: `build_schema` attaches none.)
    if !ctx.schema_env.custom_directives.is_empty() {
        return resolve_container(ctx, root).await;
    }
    let mut fields = Vec::new();
    collect(ctx, root, &mut fields)?;
    let later: Vec<FieldFuture<'a>> = fields
        .iter_mut()
        .filter_map(|field| match field {
            Pending::Later(future) => Some(std::mem::replace(
                future,
                Box::pin(async { Err(ServerError::new("resolved twice", None)) }),
            )),
            Pending::Ready(..) => None,
        })
        .collect();
    let mut resolved = async_graphql::futures_util::future::join_all(later)
        .await
        .into_iter();
    let mut object = IndexMap::with_capacity(fields.len());
    for field in fields {
        let result = match field {
            Pending::Ready(name, value) => Ok((name, value)),
            Pending::Later(_) => resolved
                .next()
                .unwrap_or_else(|| Err(ServerError::new("a field lost its answer", None))),
        };
        match result {
            Ok((name, value)) => merge(&mut object, name, value),
            Err(error) => ctx.add_error(error),
        }
    }
    Ok(if object.is_empty() {
        Value::Null
    } else {
        Value::Object(object)
    })
}

/// The selected fields of `root`, fragments expanded, in selection order.
fn collect<'a, T: ContainerType + ReadyFields>(
    ctx: &ContextSelectionSet<'a>,
    root: &'a T,
    fields: &mut Vec<Pending<'a>>,
) -> ServerResult<()> {
    for selection in &ctx.item.node.items {
        let (condition, selection_set) = match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.clone();
                let name = field.node.name.node.as_str();
                if name == "__typename" {
                    let typename = root.introspection_type_name().into_owned();
                    fields.push(Pending::Ready(key, Value::String(typename)));
                    continue;
                }
                if field.node.arguments.is_empty()
                    && let Some(value) = root.ready_field(name)
                {
                    fields.push(Pending::Ready(key, value));
                    continue;
                }
                let ctx = ctx.clone();
                if field.node.arguments.is_empty() && root.has_lean_field(name) {
                    fields.push(Pending::Later(Box::pin(async move {
                        let ctx_field = ctx.with_field(field);
                        Ok((key, root.lean_field(&ctx_field).await?))
                    })));
                    continue;
                }
                fields.push(Pending::Later(Box::pin(async move {
                    let ctx_field = ctx.with_field(field);
                    let value = root.resolve_field(&ctx_field).await?;
                    Ok((key, value.unwrap_or_default()))
                })));
                continue;
            }
            Selection::FragmentSpread(spread) => {
                let Some(fragment) = ctx.query_env.fragments.get(&spread.node.fragment_name.node)
                else {
                    return Err(ServerError::new(
                        format!("unknown fragment `{}`", spread.node.fragment_name.node),
                        Some(spread.pos),
                    ));
                };
                (
                    Some(fragment.node.type_condition.node.on.node.as_str()),
                    &fragment.node.selection_set,
                )
            }
            Selection::InlineFragment(fragment) => (
                fragment
                    .node
                    .type_condition
                    .as_ref()
                    .map(|c| c.node.on.node.as_str()),
                &fragment.node.selection_set,
            ),
        };
        let applies = match condition {
            None => true,
            Some(condition) => {
                let own = root.introspection_type_name();
                own == condition
                    || ctx
                        .schema_env
                        .registry
                        .implements
                        .get(own.as_ref())
                        .is_some_and(|interfaces| interfaces.contains(condition))
            }
        };
        if applies {
            collect(&ctx.with_selection_set(selection_set), root, fields)?;
        }
    }
    Ok(())
}

/// Adds a field's answer to the object; a key selected twice (`{ a { x } a { y } }`) gets
/// both answers merged, object by object and list item by list item.
fn merge(object: &mut IndexMap<Name, Value>, key: Name, value: Value) {
    use async_graphql::indexmap::map::Entry;
    match object.entry(key) {
        Entry::Vacant(entry) => {
            entry.insert(value);
        }
        Entry::Occupied(mut entry) => merge_values(entry.get_mut(), value),
    }
}

fn merge_values(existing: &mut Value, value: Value) {
    match (existing, value) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                merge(into, key, value);
            }
        }
        (Value::List(into), Value::List(from)) => {
            for (into, from) in into.iter_mut().zip(from) {
                merge_values(into, from);
            }
        }
        _ => {}
    }
}

impl<T: ReadyFields> ReadyFields for &T {
    fn ready_field(&self, name: &str) -> Option<Value> {
        (**self).ready_field(name)
    }

    fn has_lean_field(&self, name: &str) -> bool {
        (**self).has_lean_field(name)
    }

    fn lean_field(&self, ctx: &Context<'_>) -> impl Future<Output = ServerResult<Value>> + Send {
        (**self).lean_field(ctx)
    }
}

/// A text field's value.
pub fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

/// An optional text field's value.
pub fn optional_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, text)
}

/// A scalar's value, as the derived resolver writes it.
pub fn scalar<T: async_graphql::ScalarType>(value: T) -> Value {
    value.to_value()
}

/// An enum's value, as the derived resolver writes it.
pub fn enumeration<T: async_graphql::resolver_utils::EnumType>(value: T) -> Value {
    async_graphql::resolver_utils::enum_value(value)
}
