//! Human-readable record numbers (`INC-000123`, `CHG-000045`): unique and sequential.
//!
//! The next value of each sequence is a row, incremented with `UPDATE ... RETURNING` inside
//! the transaction that creates the record: the row lock (PostgreSQL) or the write lock
//! (SQLite) serialises concurrent creations, and a rolled-back creation gives its number
//! back, so numbers have no gaps and no duplicates.

use sea_orm::{ConnectionTrait, Statement};

use super::graph_log::statement;
use super::{Error, Result};

/// The sequences, by the prefix of their numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    Incident,
    Change,
}

impl Sequence {
    fn prefix(self) -> &'static str {
        match self {
            Sequence::Incident => "INC",
            Sequence::Change => "CHG",
        }
    }
}

/// Formats a number: the prefix, a dash and at least six digits.
pub fn format(sequence: Sequence, value: i64) -> String {
    format!("{}-{value:06}", sequence.prefix())
}

/// Takes the next number of `sequence`. Call inside the write transaction of the record.
pub async fn next(db: &impl ConnectionTrait, sequence: Sequence) -> Result<String> {
    let template = statement(
        db,
        "UPDATE number_sequence SET next_value = next_value + 1 WHERE name = $1 \
         RETURNING next_value",
    );
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            template.sql,
            [sequence.prefix().into()],
        ))
        .await?
        .ok_or_else(|| {
            Error::internal(anyhow::anyhow!(
                "number sequence {} is missing",
                sequence.prefix()
            ))
        })?;
    let next_value: i64 = row.try_get("", "next_value")?;
    Ok(format(sequence, next_value - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_a_prefix_and_six_digits_at_least() {
        assert_eq!(format(Sequence::Incident, 123), "INC-000123");
        assert_eq!(format(Sequence::Change, 45), "CHG-000045");
        assert_eq!(format(Sequence::Change, 1_234_567), "CHG-1234567");
    }
}
