//! Keyset (cursor) pagination shared by every list that can grow.
//!
//! A page is read by walking an index on (sort column, id): never with OFFSET, so a page
//! costs the same wherever it is and a cursor stays valid when rows are added or removed
//! before it. A cursor is opaque to clients: base64 of the ordering it was made for, the
//! sort value and the id of the row it points at. A cursor made for one ordering is refused
//! by another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select,
    Value, sea_query::Condition,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Error, Result};
use crate::limits::Limits;

/// Pagination arguments as a client gave them (Relay style).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// Validated pagination arguments: how many rows, which way, between which cursors.
#[derive(Debug, Clone)]
pub struct PageWindow {
    pub limit: usize,
    /// `last` was given: take the rows closest to `before` (or to the end).
    pub backward: bool,
    pub after: Option<String>,
    pub before: Option<String>,
}

impl PageRequest {
    /// Checks the sizes against the limits: `first` and `last` exclude each other, must not be
    /// negative, and must not exceed the maximum page size (that is `LIMIT_EXCEEDED`).
    pub fn window(self, limits: &Limits) -> Result<PageWindow> {
        let size = |name: &str, value: i32| -> Result<usize> {
            if value < 0 {
                return Err(Error::invalid(
                    name,
                    format!("`{name}` must not be negative"),
                ));
            }
            let value = value as usize;
            if value > limits.max_page_size {
                return Err(Error::LimitExceeded(format!(
                    "`{name}` is {value}, over the maximum page size of {} (limit `max_page_size`)",
                    limits.max_page_size
                )));
            }
            Ok(value)
        };
        let (limit, backward) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid("last", "give `first` or `last`, not both"));
            }
            (Some(first), None) => (size("first", first)?, false),
            (None, Some(last)) => (size("last", last)?, true),
            (None, None) => (limits.default_page_size.min(limits.max_page_size), false),
        };
        Ok(PageWindow {
            limit,
            backward,
            after: self.after,
            before: self.before,
        })
    }
}

/// One page of rows, each with the cursor that points at it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<(String, T)>,
    pub has_previous_page: bool,
    pub has_next_page: bool,
}

impl<T> Page<T> {
    /// The same page with every row converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        let mut f = f;
        Page {
            items: self.items.into_iter().map(|(c, t)| (c, f(t))).collect(),
            has_previous_page: self.has_previous_page,
            has_next_page: self.has_next_page,
        }
    }
}

/// A sort value or id as stored in a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v")]
pub enum KeyValue {
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
    Uuid(Uuid),
}

/// The type of a sort value or id; a cursor's values must have the types of its ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Text,
    Time,
    Int,
    Uuid,
}

/// Longest cursor accepted, in characters: real cursors are under 200.
const MAX_CURSOR_CHARS: usize = 1_024;
/// Longest text sort value a cursor may carry, in characters (names are at most 255).
const MAX_CURSOR_TEXT_CHARS: usize = 512;

impl KeyValue {
    fn kind(&self) -> KeyKind {
        match self {
            KeyValue::Text(_) => KeyKind::Text,
            KeyValue::Time(_) => KeyKind::Time,
            KeyValue::Int(_) => KeyKind::Int,
            KeyValue::Uuid(_) => KeyKind::Uuid,
        }
    }

    /// Whether every engine can compare a column with this value: text without NUL and
    /// of a sane length, a time within the years both engines store.
    fn storable(&self) -> bool {
        use chrono::Datelike;
        match self {
            KeyValue::Text(text) => {
                !text.contains('\0') && text.chars().count() <= MAX_CURSOR_TEXT_CHARS
            }
            KeyValue::Time(time) => (1..=9999).contains(&time.year()),
            KeyValue::Int(_) | KeyValue::Uuid(_) => true,
        }
    }
}

impl From<KeyValue> for Value {
    fn from(value: KeyValue) -> Self {
        match value {
            KeyValue::Text(text) => text.into(),
            KeyValue::Time(time) => time.into(),
            KeyValue::Int(int) => int.into(),
            KeyValue::Uuid(uuid) => uuid.into(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// The ordering the cursor was made for.
    o: String,
    /// Sort value, absent when the ordering is by id alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<KeyValue>,
    /// Id of the row.
    i: KeyValue,
}

impl Cursor {
    fn encode(&self) -> String {
        // Serialising these plain values cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads a cursor a client sent back. A cursor is client input: every part is checked
    /// against the ordering it must belong to (its tag, the type of each value, the range
    /// of each value), so that a tampered cursor is `VALIDATION` on every engine and never
    /// reaches the database as a comparison it cannot make.
    fn decode<C>(field: &str, text: &str, key: &SortKey<C>) -> Result<Self> {
        let invalid = || Error::invalid(field, format!("`{field}` is not a valid cursor"));
        if text.len() > MAX_CURSOR_CHARS {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if cursor.o != key.tag {
            return Err(Error::invalid(
                field,
                format!(
                    "`{field}` is a cursor of another ordering or list; restart from the first page"
                ),
            ));
        }
        let primary_fits = match (&cursor.k, key.primary_kind) {
            (None, None) => true,
            (Some(value), Some(kind)) => value.kind() == kind && value.storable(),
            _ => false,
        };
        if !primary_fits || cursor.i.kind() != key.id_kind || !cursor.i.storable() {
            return Err(invalid());
        }
        Ok(cursor)
    }
}

/// The ordering of a list: an optional sort column, then the id as tie-breaker.
#[derive(Debug, Clone)]
pub struct SortKey<C> {
    pub primary: Option<C>,
    /// The type of the primary column's values.
    pub primary_kind: Option<KeyKind>,
    pub id: C,
    /// The type of the id column's values.
    pub id_kind: KeyKind,
    pub descending: bool,
    /// Names the list and ordering; cursors carry it.
    pub tag: &'static str,
}

impl<C> SortKey<C> {
    /// Ordering by a column holding `kind` values, ties broken by a UUID id.
    pub fn by(primary: C, kind: KeyKind, id: C, descending: bool, tag: &'static str) -> Self {
        SortKey {
            primary: Some(primary),
            primary_kind: Some(kind),
            id,
            id_kind: KeyKind::Uuid,
            descending,
            tag,
        }
    }

    /// Ordering by an id holding `kind` values alone.
    pub fn by_id(id: C, kind: KeyKind, descending: bool, tag: &'static str) -> Self {
        SortKey {
            primary: None,
            primary_kind: None,
            id,
            id_kind: kind,
            descending,
            tag,
        }
    }
}

impl<C: ColumnTrait> SortKey<C> {
    /// Rows strictly beyond the cursor, walking ascending or descending.
    fn beyond(&self, cursor: &Cursor, ascending: bool) -> Condition {
        let id: Value = cursor.i.clone().into();
        let id_beyond = if ascending {
            self.id.gt(id.clone())
        } else {
            self.id.lt(id.clone())
        };
        match (&self.primary, &cursor.k) {
            (Some(primary), Some(key)) => {
                let key: Value = key.clone().into();
                let primary_beyond = if ascending {
                    primary.gt(key.clone())
                } else {
                    primary.lt(key.clone())
                };
                Condition::any()
                    .add(primary_beyond)
                    .add(Condition::all().add(primary.eq(key)).add(id_beyond))
            }
            _ => Condition::all().add(id_beyond),
        }
    }
}

/// Reads one page of `select` in the order of `key`. `key_of` gives the sort value and id of
/// a row, for its cursor.
pub async fn fetch_page<E, F>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    key: &SortKey<E::Column>,
    window: &PageWindow,
    key_of: F,
) -> Result<Page<E::Model>>
where
    E: EntityTrait,
    F: Fn(&E::Model) -> (Option<KeyValue>, KeyValue),
{
    let after = window
        .after
        .as_deref()
        .map(|text| Cursor::decode("after", text, key))
        .transpose()?;
    let before = window
        .before
        .as_deref()
        .map(|text| Cursor::decode("before", text, key))
        .transpose()?;
    let ascending = !key.descending;
    let after_condition = after.as_ref().map(|c| key.beyond(c, ascending));
    let before_condition = before.as_ref().map(|c| key.beyond(c, !ascending));

    let mut query = select.clone();
    if let Some(condition) = &after_condition {
        query = query.filter(condition.clone());
    }
    if let Some(condition) = &before_condition {
        query = query.filter(condition.clone());
    }
    // Walking backward reads the rows nearest `before` first, then flips them.
    let walk_ascending = ascending != window.backward;
    let order = if walk_ascending {
        Order::Asc
    } else {
        Order::Desc
    };
    if let Some(primary) = key.primary {
        query = query.order_by(primary, order.clone());
    }
    query = query.order_by(key.id, order);
    let mut rows = if window.limit == 0 {
        Vec::new()
    } else {
        query.limit(window.limit as u64 + 1).all(db).await?
    };
    let has_more = rows.len() > window.limit;
    rows.truncate(window.limit);
    if window.backward {
        rows.reverse();
    }

    // Is there anything on the other side of the cursor we started from?
    let exists_outside = |condition: Option<Condition>| {
        let select = select.clone();
        async move {
            match condition {
                Some(condition) => Ok::<bool, Error>(
                    select
                        .filter(condition.not())
                        .limit(1)
                        .one(db)
                        .await?
                        .is_some(),
                ),
                None => Ok(false),
            }
        }
    };
    let (has_previous_page, has_next_page) = if window.backward {
        (has_more, exists_outside(before_condition).await?)
    } else {
        (exists_outside(after_condition).await?, has_more)
    };

    let items = rows
        .into_iter()
        .map(|row| {
            let (k, i) = key_of(&row);
            let cursor = Cursor {
                o: key.tag.to_owned(),
                k,
                i,
            };
            (cursor.encode(), row)
        })
        .collect();
    Ok(Page {
        items,
        has_previous_page,
        has_next_page,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_page_size: 100,
            default_page_size: 20,
            ..Limits::default()
        }
    }

    #[test]
    fn page_size_over_the_maximum_is_limit_exceeded() {
        let request = PageRequest {
            first: Some(101),
            ..Default::default()
        };
        let err = request.window(&limits()).unwrap_err();
        assert_eq!(err.code(), "LIMIT_EXCEEDED");
        assert!(err.to_string().contains("max_page_size"));
    }

    #[test]
    fn first_and_last_together_are_refused() {
        let request = PageRequest {
            first: Some(1),
            last: Some(1),
            ..Default::default()
        };
        assert_eq!(request.window(&limits()).unwrap_err().code(), "VALIDATION");
    }

    #[test]
    fn no_size_means_the_default_page_size() {
        let window = PageRequest::default().window(&limits()).unwrap();
        assert_eq!(window.limit, 20);
        assert!(!window.backward);
    }

    #[test]
    fn a_cursor_round_trips_and_is_refused_by_another_ordering() {
        let cursor = Cursor {
            o: "ci:name:asc".into(),
            k: Some(KeyValue::Text("web-01".into())),
            i: KeyValue::Uuid(Uuid::nil()),
        };
        let text = cursor.encode();
        let by_name = SortKey::by("name", KeyKind::Text, "id", false, "ci:name:asc");
        let decoded = Cursor::decode("after", &text, &by_name).unwrap();
        assert_eq!(decoded.k, cursor.k);
        assert_eq!(decoded.i, cursor.i);
        let other = SortKey::by("name", KeyKind::Text, "id", true, "ci:name:desc");
        let err = Cursor::decode("after", &text, &other).unwrap_err();
        assert_eq!(err.code(), "VALIDATION");
        assert_eq!(
            Cursor::decode("after", "not a cursor", &by_name)
                .unwrap_err()
                .code(),
            "VALIDATION"
        );
    }

    #[test]
    fn a_cursor_whose_values_have_other_types_or_ranges_is_refused() {
        let by_name = SortKey::by("name", KeyKind::Text, "id", false, "ci:name:asc");
        let tampered = [
            (Some(KeyValue::Int(5)), KeyValue::Uuid(Uuid::nil())),
            (Some(KeyValue::Text("a".into())), KeyValue::Int(1)),
            (None, KeyValue::Uuid(Uuid::nil())),
            (
                Some(KeyValue::Text("nul\0".into())),
                KeyValue::Uuid(Uuid::nil()),
            ),
            (
                Some(KeyValue::Text("x".repeat(600))),
                KeyValue::Uuid(Uuid::nil()),
            ),
        ];
        for (k, i) in tampered {
            let text = Cursor {
                o: "ci:name:asc".into(),
                k: k.clone(),
                i,
            }
            .encode();
            assert_eq!(
                Cursor::decode("after", &text, &by_name)
                    .map(|_| ())
                    .map_err(|e| e.code()),
                Err("VALIDATION"),
                "{k:?}"
            );
        }
        let by_time = SortKey::by("at", KeyKind::Time, "id", false, "t");
        let far = r#"{"o":"t","k":{"t":"Time","v":"+200000-01-01T00:00:00Z"},"i":{"t":"Uuid","v":"00000000-0000-0000-0000-000000000000"}}"#;
        let text = URL_SAFE_NO_PAD.encode(far);
        assert!(Cursor::decode("after", &text, &by_time).is_err());
        assert!(Cursor::decode("after", &"A".repeat(2_000), &by_time).is_err());
    }
}
