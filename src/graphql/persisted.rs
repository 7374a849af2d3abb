//! Automatic persisted queries (the hash-based protocol front-end GraphQL clients speak): a
//! client sends a document's SHA-256 alone; the server answers from the document it already
//! holds, or with `PERSISTED_QUERY_NOT_FOUND`, and the client then sends the document and
//! its hash once. Large front-end queries cross the network once per server instance.
//!
//! The store is bounded in entries and in bytes, and forgets its oldest documents first. A
//! document is held only once its hash has been checked against its text, so a client can
//! never make the server answer one hash with another document. Everything a stored
//! document runs through afterwards (limits, access, validation) is the same as for a
//! document sent in full.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_graphql::Request;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The extension that carries the hash: `extensions.persistedQuery`.
const EXTENSION: &str = "persistedQuery";

/// The documents this server was sent with their hashes.
pub struct PersistedQueries {
    held: Mutex<Held>,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Held {
    by_hash: HashMap<String, String>,
    order: VecDeque<String>,
    bytes: usize,
}

impl Default for PersistedQueries {
    /// Room for the queries of several front-ends: 4,096 documents, 32 MiB in all.
    fn default() -> Self {
        Self::new(4096, 32 << 20)
    }
}

impl PersistedQueries {
    /// A store of at most `max_entries` documents and `max_bytes` of document text.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            held: Mutex::new(Held::default()),
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    /// Fills in `request.query` from the store when the request names a persisted query by
    /// hash alone. When the document comes with its hash, the hash is checked and returned:
    /// the caller [`keep`](Self::keep)s the document once it has been admitted. Requests
    /// without the extension pass untouched.
    pub fn resolve(&self, request: &mut Request) -> Result<Option<String>, Error> {
        let Some(extension) = request.extensions.get(EXTENSION) else {
            return Ok(None);
        };
        let hash = requested_hash(&extension.clone().into_json().unwrap_or_default())?;
        if request.query.is_empty() {
            let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            return match held.by_hash.get(&hash) {
                Some(query) => {
                    request.query = query.clone();
                    Ok(None)
                }
                None => Err(Error::PersistedQueryNotFound),
            };
        }
        if sha256_hex(&request.query) != hash {
            return Err(Error::invalid(
                "extensions.persistedQuery.sha256Hash",
                "the hash is not the SHA-256 of the document sent with it",
            ));
        }
        Ok(Some(hash))
    }

    /// Holds `query` under `hash` (checked by [`resolve`](Self::resolve)).
    pub fn keep(&self, hash: String, query: &str) {
        if query.len() > self.max_bytes {
            return;
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.by_hash.contains_key(&hash) {
            return;
        }
        while held.order.len() >= self.max_entries || held.bytes + query.len() > self.max_bytes {
            let Some(oldest) = held.order.pop_front() else {
                break;
            };
            if let Some(gone) = held.by_hash.remove(&oldest) {
                held.bytes -= gone.len();
            }
        }
        held.bytes += query.len();
        held.order.push_back(hash.clone());
        held.by_hash.insert(hash, query.to_owned());
    }

    /// How many documents are held.
    pub fn len(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .order
            .len()
    }

    /// Whether no document is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The lowercase hexadecimal SHA-256 of a document, as the protocol names it.
pub fn sha256_hex(query: &str) -> String {
    Sha256::digest(query.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash a `persistedQuery` extension names, checked: version 1, 64 hexadecimal digits.
fn requested_hash(extension: &serde_json::Value) -> Result<String, Error> {
    const FIELD: &str = "extensions.persistedQuery";
    if extension.get("version").and_then(serde_json::Value::as_i64) != Some(1) {
        return Err(Error::invalid(
            format!("{FIELD}.version"),
            "only version 1 of the persisted query protocol is supported",
        ));
    }
    let hash = extension
        .get("sha256Hash")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid(
            format!("{FIELD}.sha256Hash"),
            "the hash must be 64 hexadecimal digits",
        ));
    }
    Ok(hash.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::{PersistedQueries, sha256_hex};
    use crate::error::Error;
    use async_graphql::{Request, Value};

    fn by_hash(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        let extension = serde_json::json!({ "version": 1, "sha256Hash": hash });
        request.extensions.insert(
            "persistedQuery".into(),
            Value::from_json(extension).expect("JSON"),
        );
        request
    }

    #[test]
    fn a_hash_is_answered_once_its_document_was_sent() {
        let store = PersistedQueries::default();
        let query = "{ __typename }";
        let hash = sha256_hex(query);
        let mut unknown = by_hash("", &hash);
        assert!(matches!(
            store.resolve(&mut unknown),
            Err(Error::PersistedQueryNotFound)
        ));
        let mut sent = by_hash(query, &hash);
        let checked = store.resolve(&mut sent).expect("checked");
        store.keep(checked.expect("a hash to keep"), query);
        let mut known = by_hash("", &hash);
        store.resolve(&mut known).expect("found");
        assert_eq!(known.query, query);
    }

    #[test]
    fn a_document_is_never_kept_under_another_documents_hash() {
        let store = PersistedQueries::default();
        let mut lying = by_hash("{ a }", &sha256_hex("{ b }"));
        assert!(matches!(
            store.resolve(&mut lying),
            Err(Error::Validation { .. })
        ));
        assert!(store.is_empty());
        let mut bad = by_hash("{ a }", "xyz");
        assert!(store.resolve(&mut bad).is_err());
    }

    #[test]
    fn the_store_forgets_its_oldest_documents_first() {
        let store = PersistedQueries::new(2, 1 << 20);
        for query in ["{ a }", "{ b }", "{ c }"] {
            store.keep(sha256_hex(query), query);
        }
        assert_eq!(store.len(), 2);
        let mut first = by_hash("", &sha256_hex("{ a }"));
        assert!(store.resolve(&mut first).is_err());
        let mut last = by_hash("", &sha256_hex("{ c }"));
        store.resolve(&mut last).expect("still held");
    }
}
