//! The class catalogue in memory: every CI class, indexed by name and id, with the class
//! tree walked for inherited attributes and identifier attributes. Below both the class
//! records (`ci_class`) and identity keys (`identity`), which each need it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use entity::ci_class;
use entity::values::AttributeDefinition;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};

use super::{Error, Result};

/// Every class, indexed, for resolving names and walking the class tree in memory.
/// Classes are few (tens to hundreds), so loading them all is cheaper than asking the
/// database one question per lookup.
#[derive(Debug, Clone)]
pub struct ClassCatalog {
    classes: Vec<Arc<ci_class::Model>>,
    by_name: HashMap<String, usize>,
    by_id: HashMap<i32, usize>,
}

impl ClassCatalog {
    /// Reads all classes.
    pub async fn load(db: &impl ConnectionTrait) -> Result<Self> {
        let classes = ci_class::Entity::find()
            .order_by_asc(ci_class::Column::Name)
            .all(db)
            .await?;
        Ok(Self::new(classes))
    }

    /// A catalog of the given classes.
    pub fn new(classes: impl IntoIterator<Item = impl Into<Arc<ci_class::Model>>>) -> Self {
        let classes: Vec<Arc<ci_class::Model>> = classes.into_iter().map(Into::into).collect();
        let by_name = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let by_id = classes.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        ClassCatalog {
            classes,
            by_name,
            by_id,
        }
    }

    /// All classes, by name.
    pub fn all(&self) -> &[Arc<ci_class::Model>] {
        &self.classes
    }

    /// The class of that id.
    pub fn get(&self, id: i32) -> Option<&ci_class::Model> {
        self.by_id.get(&id).map(|&i| &*self.classes[i])
    }

    /// The class of that id, shared (for answers that outlive a borrow of the catalogue).
    pub fn shared(&self, id: i32) -> Option<Arc<ci_class::Model>> {
        self.by_id.get(&id).map(|&i| self.classes[i].clone())
    }

    /// The class of that name, or `NOT_FOUND`.
    pub fn by_name(&self, name: &str) -> Result<&ci_class::Model> {
        self.by_name
            .get(name)
            .map(|&i| &*self.classes[i])
            .ok_or_else(|| Error::not_found("CI class", name))
    }

    /// The class of that name, or a `VALIDATION` error about the input field that named it.
    pub fn resolve(&self, field: &str, name: &str) -> Result<&ci_class::Model> {
        self.by_name(name)
            .map_err(|_| Error::invalid(field, format!("there is no CI class named `{name}`")))
    }

    /// The class and its ancestors, nearest first. Stops on a cycle, which the writers of
    /// this module never create.
    pub fn lineage(&self, id: i32) -> Vec<&ci_class::Model> {
        let mut lineage = Vec::new();
        let mut seen = HashSet::new();
        let mut current = self.get(id);
        while let Some(class) = current {
            if !seen.insert(class.id) {
                break;
            }
            lineage.push(class);
            current = class.parent_id.and_then(|p| self.get(p));
        }
        lineage
    }

    /// Ids of the class and all its descendants: what a filter on a class matches.
    pub fn with_descendants(&self, id: i32) -> Vec<i32> {
        let mut result = vec![id];
        let mut i = 0;
        while i < result.len() {
            let parent = result[i];
            for class in &self.classes {
                if class.parent_id == Some(parent) && !result.contains(&class.id) {
                    result.push(class.id);
                }
            }
            i += 1;
        }
        result
    }

    /// Direct subclasses.
    pub fn children(&self, id: i32) -> Vec<&ci_class::Model> {
        self.classes
            .iter()
            .filter(|c| c.parent_id == Some(id))
            .map(|c| &**c)
            .collect()
    }

    /// The attribute definitions that apply to CIs of the class: inherited ones first, a
    /// child's definition replacing an ancestor's of the same name.
    pub fn effective_attributes(&self, id: i32) -> Vec<AttributeDefinition> {
        let mut result: Vec<AttributeDefinition> = Vec::new();
        for class in self.lineage(id).into_iter().rev() {
            for definition in &class.attributes.0 {
                match result.iter_mut().find(|d| d.name == definition.name) {
                    Some(existing) => *existing = definition.clone(),
                    None => result.push(definition.clone()),
                }
            }
        }
        result
    }

    /// The identifier attributes that apply: the class's own, or else the nearest
    /// ancestor's that declares some.
    pub fn effective_identifiers(&self, id: i32) -> Vec<String> {
        self.lineage(id)
            .into_iter()
            .find(|c| !c.identifier_attributes.0.is_empty())
            .map(|c| c.identifier_attributes.0.clone())
            .unwrap_or_default()
    }
}
