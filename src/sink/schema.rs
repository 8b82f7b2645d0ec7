//! PostgreSQL schemas as sink targets: a replay into shadow tables writes the same tables
//! (the same migrations) into another schema of the same database. A schema name cannot be
//! a bound parameter, so it is checked against a strict identifier pattern (lower-case
//! letters, digits, `_`, at most 63 bytes, not `pg_*`) and always double-quoted; the sink
//! reaches it through the connection's `search_path`, so its SQL stays unqualified.

use anyhow::{ensure, Context, Result};

/// The schema of the live tables when the connection does not say otherwise.
pub const LIVE: &str = "public";

/// Checks that `name` is a plain lower-case SQL identifier.
pub fn validate(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with("pg_")
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_lowercase() || b == b'_' || (i > 0 && b.is_ascii_digit()));
    ensure!(
        ok,
        "invalid schema name {name:?}: use 1-63 characters of a-z, 0-9 and '_', starting with a letter or '_', not pg_*"
    );
    Ok(())
}

/// `name` double-quoted for SQL, after [`validate`] (identifiers from the catalog pass too).
pub fn quote(name: &str) -> Result<String> {
    validate_ident(name)?;
    Ok(format!("\"{name}\""))
}

/// Checks a table or column name read from the catalog before it is quoted into SQL.
fn validate_ident(name: &str) -> Result<()> {
    ensure!(
        !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "unexpected identifier {name:?}"
    );
    Ok(())
}

/// The connection string `conn` with `schema` as its only search path: unqualified
/// tables (the migrations, the upserts, the stored offsets) all resolve into it.
pub fn with_search_path(conn: &str, schema: &str) -> Result<String> {
    validate(schema)?;
    Ok(format!("{conn} options='-c search_path={schema}'"))
}

/// Creates `schema` if it does not exist.
pub async fn ensure(client: &tokio_postgres::Client, schema: &str) -> Result<()> {
    validate(schema)?;
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)?))
        .await
        .with_context(|| format!("creating schema {schema}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_pass() {
        for ok in ["shadow", "shadow_2", "_x"] {
            validate(ok).unwrap();
        }
        for bad in [
            "",
            "Shadow",
            "2x",
            "a-b",
            "a\"b",
            "x; drop table t",
            "pg_catalog",
            &"a".repeat(64),
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        assert_eq!(quote("shadow").unwrap(), "\"shadow\"");
        assert!(with_search_path("host=h", "shadow")
            .unwrap()
            .ends_with("options='-c search_path=shadow'"));
    }
}
