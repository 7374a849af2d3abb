//! Relay connections over the domain's keyset pages, with a `totalCount` computed only when
//! a client asks for it.

use std::sync::Arc;

use async_graphql::futures_util::future::BoxFuture;
use async_graphql::{Context, SimpleObject};
use sea_orm::DatabaseConnection;

use crate::domain::pagination::{Page, PageRequest, PageWindow};
use crate::error::Result as DomainResult;

use super::context;

type Counter = dyn Fn(DatabaseConnection) -> BoxFuture<'static, DomainResult<u64>> + Send + Sync;

/// Counts the items of a list lazily: the query runs only if `totalCount` is selected.
pub struct TotalCount(Arc<Counter>);

impl TotalCount {
    /// A count computed by `counter` from the database connection.
    pub fn new<F>(counter: F) -> Self
    where
        F: Fn(DatabaseConnection) -> BoxFuture<'static, DomainResult<u64>> + Send + Sync + 'static,
    {
        TotalCount(Arc::new(counter))
    }

    /// Runs the count.
    pub async fn resolve(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let db = context::db(ctx)?.clone();
        Ok((self.0)(db).await?)
    }
}

/// Where a page sits in its list (Relay `PageInfo`).
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether items come before this page.
    pub has_previous_page: bool,
    /// Whether items come after this page.
    pub has_next_page: bool,
    /// Cursor of the first item of the page; pass it as `before` for the previous page.
    pub start_cursor: Option<String>,
    /// Cursor of the last item of the page; pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// A connection type built from a domain page.
pub trait ConnectionType {
    /// What the list holds.
    type Node;
    /// The connection of these edges.
    fn new(edges: Vec<(String, Self::Node)>, page_info: PageInfo, total: TotalCount) -> Self;
}

/// Declares a Relay connection type and its edge type for one kind of node.
macro_rules! connection_type {
    ($connection:ident, $edge:ident, $node:ty, $doc:literal, $edge_doc:literal) => {
        #[doc = $doc]
        pub struct $connection {
            edges: Vec<$edge>,
            page_info: $crate::graphql::pagination::PageInfo,
            total: $crate::graphql::pagination::TotalCount,
        }

        #[doc = $doc]
        #[async_graphql::Object]
        impl $connection {
            /// The items of this page, each with its cursor.
            async fn edges(&self) -> Vec<$crate::graphql::lean::Lean<&$edge>> {
                self.edges.iter().map($crate::graphql::lean::Lean).collect()
            }

            /// The items of this page.
            async fn nodes(&self) -> Vec<$crate::graphql::lean::Lean<&$node>> {
                self.edges
                    .iter()
                    .map(|edge| $crate::graphql::lean::Lean(&edge.node))
                    .collect()
            }

            /// Where this page sits in the list.
            async fn page_info(&self) -> &$crate::graphql::pagination::PageInfo {
                &self.page_info
            }

            /// How many items match, over all pages.
            async fn total_count(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<u64> {
                self.total.resolve(ctx).await
            }
        }

        #[doc = $edge_doc]
        pub struct $edge {
            cursor: String,
            node: $node,
        }

        #[doc = $edge_doc]
        #[async_graphql::Object]
        impl $edge {
            /// Opaque position of the item; pass it as `after` or `before`.
            async fn cursor(&self) -> &str {
                &self.cursor
            }

            /// The item.
            async fn node(&self) -> $crate::graphql::lean::Lean<&$node> {
                $crate::graphql::lean::Lean(&self.node)
            }
        }

        impl $crate::graphql::lean::ReadyFields for $edge {
            fn ready_field(&self, name: &str) -> Option<async_graphql::Value> {
                (name == "cursor").then(|| $crate::graphql::lean::text(&self.cursor))
            }
        }

        impl $crate::graphql::pagination::ConnectionType for $connection {
            type Node = $node;

            fn new(
                edges: Vec<(String, $node)>,
                page_info: $crate::graphql::pagination::PageInfo,
                total: $crate::graphql::pagination::TotalCount,
            ) -> Self {
                $connection {
                    edges: edges
                        .into_iter()
                        .map(|(cursor, node)| $edge { cursor, node })
                        .collect(),
                    page_info,
                    total,
                }
            }
        }
    };
}

pub(crate) use connection_type;

/// Validates Relay pagination arguments against the server's limits.
pub fn window(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> async_graphql::Result<PageWindow> {
    let request = PageRequest {
        first,
        after,
        last,
        before,
    };
    Ok(request.window(context::limits(ctx)?)?)
}

/// Turns a domain page into a connection, wrapping each row into its GraphQL type.
pub fn connection<T, C: ConnectionType>(
    page: Page<T>,
    total: TotalCount,
    wrap: impl Fn(T) -> C::Node,
) -> C {
    let page_info = PageInfo {
        has_previous_page: page.has_previous_page,
        has_next_page: page.has_next_page,
        start_cursor: page.items.first().map(|(cursor, _)| cursor.clone()),
        end_cursor: page.items.last().map(|(cursor, _)| cursor.clone()),
    };
    let edges = page
        .items
        .into_iter()
        .map(|(cursor, item)| (cursor, wrap(item)))
        .collect();
    C::new(edges, page_info, total)
}

/// The complexity of a connection field: its page size times what each node costs.
pub fn complexity(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let size = first.or(last).unwrap_or(50).clamp(0, i32::MAX) as usize;
    size.max(1)
        .saturating_mul(child_complexity)
        .saturating_add(2)
}
