//! What a GraphQL document must satisfy before the server pays for parsing and validating
//! it. Every check here is one linear pass over text or over the parsed document, so a
//! hostile document costs about as much to refuse as it took to send.
//!
//! Order of the checks, cheapest first: the size in bytes, then one lexical scan (tokens,
//! arguments per field, directives, nesting, length of names), then the parse (on a
//! blocking thread, under the request's deadline), then the size of the document once its
//! fragments are expanded (fragments that spread each other several times grow a small
//! document exponentially), measured with memoisation so that the measure itself stays
//! linear.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use crate::error::Error;
use crate::limits::Limits;

/// What the lexical scan found, for the log and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    pub tokens: usize,
    pub most_arguments: usize,
    pub directives: usize,
    pub deepest_nesting: usize,
}

/// Longest name a document may hold: GraphQL names of real schemas are short, and a long
/// one would be echoed in every error that names it.
const MAX_NAME_CHARS: usize = 256;

fn limit(message: String) -> Error {
    Error::LimitExceeded(message)
}

/// Checks the document's size and scans it once: tokens, arguments of one field (or
/// variables of one operation), directives, bracket nesting and name lengths must all be
/// within the limits. Text that is not lexically GraphQL is left to the parser.
pub fn scan(query: &str, limits: &Limits) -> Result<Shape, Error> {
    if query.len() > limits.max_document_bytes {
        return Err(limit(format!(
            "the document is {} bytes long, over the limit of {} (limit `max_document_bytes`)",
            query.len(),
            limits.max_document_bytes
        )));
    }
    let bytes = query.as_bytes();
    let mut shape = Shape::default();
    // Open brackets, innermost last, each with the arguments counted inside it (for `(`).
    let mut open: Vec<(u8, usize)> = Vec::new();
    let mut previous_was_name = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        shape.tokens += 1;
        if shape.tokens > limits.max_document_tokens {
            return Err(limit(format!(
                "the document has more than {} tokens (limit `max_document_tokens`)",
                limits.max_document_tokens
            )));
        }
        let mut is_name = false;
        match byte {
            b'"' => i = skip_string(bytes, i),
            b'.' => i += if bytes[i..].starts_with(b"...") { 3 } else { 1 },
            b'(' | b'[' | b'{' => {
                open.push((byte, 0));
                shape.deepest_nesting = shape.deepest_nesting.max(open.len());
                if open.len() > limits.max_document_nesting {
                    return Err(limit(format!(
                        "the document nests brackets more than {} deep (limit `max_document_nesting`)",
                        limits.max_document_nesting
                    )));
                }
                i += 1;
            }
            b')' | b']' | b'}' => {
                open.pop();
                i += 1;
            }
            b':' => {
                if previous_was_name && let Some((b'(', arguments)) = open.last_mut() {
                    *arguments += 1;
                    shape.most_arguments = shape.most_arguments.max(*arguments);
                    if *arguments > limits.max_field_arguments {
                        return Err(limit(format!(
                            "a field or operation of the document has more than {} arguments \
                             (limit `max_field_arguments`)",
                            limits.max_field_arguments
                        )));
                    }
                }
                i += 1;
            }
            b'@' => {
                shape.directives += 1;
                if shape.directives > limits.max_document_directives {
                    return Err(limit(format!(
                        "the document has more than {} directives (limit `max_document_directives`)",
                        limits.max_document_directives
                    )));
                }
                i += 1;
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                let start = i;
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                if i - start > MAX_NAME_CHARS {
                    return Err(limit(format!(
                        "the document holds a name longer than {MAX_NAME_CHARS} characters"
                    )));
                }
                is_name = true;
            }
            b'-' | b'0'..=b'9' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'+' | b'-'))
                {
                    i += 1;
                }
            }
            _ => {
                // Any other character is one token; the parser decides whether it is valid.
                i += query[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
        previous_was_name = is_name;
    }
    Ok(shape)
}

/// The index just past the string (or block string) starting at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return i;
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    i
}

/// Parses a scanned document. Syntax errors are described by position and by what was
/// expected, never by quoting the document back.
pub fn parse(query: &str) -> Result<ExecutableDocument, ParseFailure> {
    async_graphql::parser::parse_query(query).map_err(|err| ParseFailure::from_parser(&err))
}

/// Why a document did not parse, in words that do not echo it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl ParseFailure {
    fn from_parser(err: &async_graphql::parser::Error) -> Self {
        use async_graphql::parser::Error as E;
        let position = err.positions().next();
        let (line, column) = position.map_or((0, 0), |p| (p.line, p.column));
        let message = match err {
            E::Syntax { message, .. } => {
                // The parser's message quotes the offending line; keep only what it expected.
                let expected = message
                    .lines()
                    .filter_map(|line| line.trim_start().strip_prefix("= "))
                    .next_back()
                    .unwrap_or("unexpected input");
                let expected: String = expected.chars().take(200).collect();
                format!("syntax error at line {line}, column {column}: {expected}")
            }
            E::RecursionLimitExceeded => {
                "the document nests selections deeper than the parser allows".to_owned()
            }
            E::MultipleOperations { .. } => {
                "a document with an anonymous operation may hold no other operation".to_owned()
            }
            E::OperationDuplicated { .. } => {
                "two operations of the document share a name".to_owned()
            }
            E::FragmentDuplicated { .. } => "two fragments of the document share a name".to_owned(),
            E::MissingOperation => "the document holds no operation".to_owned(),
            other => {
                let text: String = other.to_string().chars().take(200).collect();
                text
            }
        };
        ParseFailure {
            message,
            line,
            column,
        }
    }
}

/// Checks the size of the document with every fragment spread replaced by the fragment:
/// what validation and execution will walk. Fragment cycles are refused here too, since
/// such a document can never be valid and its expansion has no end.
pub fn check_expansion(document: &ExecutableDocument, limits: &Limits) -> Result<usize, Error> {
    let mut sizes: HashMap<&str, Expansion> = HashMap::new();
    let mut total = 0usize;
    let sets = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node);
    for set in sets {
        total = total.saturating_add(expanded_size(document, set, &mut sizes)?);
    }
    if total > limits.max_expanded_selections {
        return Err(limit(format!(
            "the document selects {total} fields once its fragments are expanded, over the \
             limit of {} (limit `max_expanded_selections`)",
            limits.max_expanded_selections
        )));
    }
    Ok(total)
}

#[derive(Clone, Copy)]
enum Expansion {
    /// Being measured: meeting it again means a cycle.
    InProgress,
    Done(usize),
}

/// The number of selections `set` stands for once fragments are expanded, without
/// recursion (a document nests as deep as its sender likes) and measuring each fragment
/// once.
fn expanded_size<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    sizes: &mut HashMap<&'a str, Expansion>,
) -> Result<usize, Error> {
    enum Step<'a> {
        Enter(&'a SelectionSet),
        EnterFragment(&'a str),
        LeaveFragment(&'a str, usize),
    }
    // `totals` holds the running total of each fragment being measured, outermost first;
    // the bottom entry is the set itself.
    let mut totals: Vec<usize> = vec![0];
    let mut stack = vec![Step::Enter(set)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Enter(set) => {
                for selection in &set.items {
                    match &selection.node {
                        Selection::Field(field) => {
                            add(&mut totals, 1);
                            stack.push(Step::Enter(&field.node.selection_set.node));
                        }
                        Selection::InlineFragment(fragment) => {
                            stack.push(Step::Enter(&fragment.node.selection_set.node));
                        }
                        Selection::FragmentSpread(spread) => {
                            stack.push(Step::EnterFragment(spread.node.fragment_name.node.as_str()))
                        }
                    }
                }
            }
            Step::EnterFragment(name) => match sizes.get(name).copied() {
                Some(Expansion::Done(size)) => add(&mut totals, size),
                Some(Expansion::InProgress) => {
                    return Err(Error::Validation {
                        message: format!("the fragment `{name}` spreads itself"),
                        field: None,
                    });
                }
                None => {
                    let Some(fragment) = document.fragments.get(name) else {
                        // Unknown fragments are reported by validation.
                        continue;
                    };
                    sizes.insert(name, Expansion::InProgress);
                    totals.push(0);
                    stack.push(Step::LeaveFragment(name, totals.len() - 1));
                    stack.push(Step::Enter(&fragment.node.selection_set.node));
                }
            },
            Step::LeaveFragment(name, level) => {
                let size = totals.pop().unwrap_or_default();
                debug_assert_eq!(level, totals.len());
                sizes.insert(name, Expansion::Done(size));
                add(&mut totals, size);
            }
        }
    }
    Ok(totals.first().copied().unwrap_or_default())
}

fn add(totals: &mut [usize], n: usize) {
    if let Some(last) = totals.last_mut() {
        *last = last.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn a_plain_query_passes_the_scan() {
        let shape = scan(
            "query Q($a: Int, $b: String) { ciClasses(x: 1, y: { z: 2 }) @include(if: true) { name } }",
            &limits(),
        )
        .expect("passes");
        assert_eq!(shape.most_arguments, 2);
        assert_eq!(shape.directives, 1);
        assert_eq!(shape.deepest_nesting, 3);
    }

    #[test]
    fn strings_comments_and_block_strings_are_single_tokens() {
        let shape = scan(
            "# a comment with ( : @ inside\n{ a(t: \"x: ( @ \\\" y\", u: \"\"\"b \\\"\"\" @ (\"\"\") }",
            &limits(),
        )
        .expect("passes");
        assert_eq!(shape.directives, 0);
        assert_eq!(shape.most_arguments, 2);
        assert_eq!(shape.tokens, 11);
    }

    #[test]
    fn each_hostile_shape_is_refused_by_the_limit_that_names_it() {
        let limits = limits();
        let arguments: Vec<String> = (0..=limits.max_field_arguments)
            .map(|i| format!("a{i}: 1"))
            .collect();
        let cases = [
            (
                "x".repeat(limits.max_document_bytes + 1),
                "max_document_bytes",
            ),
            (
                "{ ".to_owned() + &"__typename ".repeat(limits.max_document_tokens) + "}",
                "max_document_tokens",
            ),
            (
                format!("{{ ciClasses({}) {{ name }} }}", arguments.join(", ")),
                "max_field_arguments",
            ),
            (
                format!("{{ a {} }}", "@skip(if: false) ".repeat(201)),
                "max_document_directives",
            ),
            (
                format!("{}{}", "{ a ".repeat(100), "}".repeat(100)),
                "max_document_nesting",
            ),
            (format!("{{ {} }}", "n".repeat(300)), "characters"),
        ];
        for (document, named) in cases {
            let err = scan(&document, &limits).expect_err(named);
            assert_eq!(err.code(), "LIMIT_EXCEEDED");
            assert!(err.to_string().contains(named), "{err} should name {named}");
        }
    }

    #[test]
    fn variables_of_an_operation_count_as_its_arguments() {
        let variables: Vec<String> = (0..=limits().max_field_arguments)
            .map(|i| format!("$v{i}: Int"))
            .collect();
        let document = format!("query({}) {{ a }}", variables.join(", "));
        assert!(scan(&document, &limits()).is_err());
    }

    #[test]
    fn parse_errors_do_not_quote_the_document() {
        let secret = "do-not-echo-this-text";
        let failure = parse(&format!("{{ a(b: {secret} ")).expect_err("does not parse");
        assert!(!failure.message.contains(secret), "{}", failure.message);
        assert_eq!(failure.line, 1);
        assert!(failure.message.starts_with("syntax error at line 1"));
    }

    #[test]
    fn fragments_that_spread_each_other_twice_are_measured_without_expanding_them() {
        let mut document = String::from("{ ...F0 }\n");
        for i in 0..40 {
            document.push_str(&format!(
                "fragment F{i} on Query {{ ...F{} ...F{} }}\n",
                i + 1,
                i + 1
            ));
        }
        document.push_str("fragment F40 on Query { __typename }\n");
        let parsed = parse(&document).expect("parses");
        let err = check_expansion(&parsed, &limits()).expect_err("2^40 selections");
        assert!(err.to_string().contains("max_expanded_selections"));
    }

    #[test]
    fn a_fragment_cycle_is_refused() {
        let parsed = parse("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
            .expect("parses");
        assert_eq!(
            check_expansion(&parsed, &limits()).map_err(|e| e.code()),
            Err("VALIDATION")
        );
    }

    #[test]
    fn expansion_counts_fields_of_fragments_and_inline_fragments() {
        let parsed =
            parse("{ a { b } ... on Query { c } ...F ...F } fragment F on Query { d { e f } }")
                .expect("parses");
        assert_eq!(check_expansion(&parsed, &limits()).ok(), Some(3 + 3 + 3));
    }
}
