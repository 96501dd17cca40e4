//! Versioned migrations, counted by `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

use super::DbError;

/// The migration steps, oldest first. Step `i` (0-based) takes the database
/// from version `i` to version `i + 1`. Never edit a released step: append a
/// new one.
pub const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"),
    include_str!("schema_v10.sql"),
    include_str!("schema_v11.sql"),
];

/// The schema version this code writes: the number of migrations.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The version reached after applying all of `migrations`.
pub(super) fn version_of(migrations: &[&str]) -> u32 {
    u32::try_from(migrations.len()).unwrap_or(u32::MAX)
}

/// Reads `PRAGMA user_version`.
pub(super) fn user_version(conn: &Connection) -> Result<u32, DbError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    u32::try_from(version).map_err(|_| DbError::InvalidData(format!("user_version is {version}")))
}

/// Applies the steps of `migrations` the database has not seen yet, each in
/// its own transaction together with its version bump, so a crash between
/// steps leaves a consistent database at the previous version.
pub(super) fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), DbError> {
    let supported = version_of(migrations);
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = user_version(&tx)?;
        if current > supported {
            return Err(DbError::TooNew {
                found: current,
                supported,
            });
        }
        let Some(step) = migrations.get(current as usize) else {
            return Ok(());
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", current + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        let names = stmt.query_map([], |row| row.get(0)).unwrap();
        names.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn empty_db_migrates_to_latest() {
        let mut conn = fresh();
        assert_eq!(user_version(&conn).unwrap(), 0);
        migrate(&mut conn, MIGRATIONS).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        const { assert!(SCHEMA_VERSION >= 1) };
        let tables = tables(&conn);
        for t in [
            "deliveries",
            "messages",
            "messages_fts",
            "meta",
            "outbox",
            "peers",
        ] {
            assert!(
                tables.iter().any(|n| n == t),
                "missing table {t}: {tables:?}"
            );
        }
        // Running again is a no-op.
        migrate(&mut conn, MIGRATIONS).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn steps_apply_in_order_and_only_once() {
        let mut conn = fresh();
        let steps = [
            "CREATE TABLE a (x INTEGER) STRICT;",
            "INSERT INTO a VALUES (1);",
        ];
        migrate(&mut conn, &steps[..1]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        migrate(&mut conn, &steps).unwrap();
        migrate(&mut conn, &steps).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "the insert step ran more than once");
    }

    #[test]
    fn failing_step_rolls_back_with_its_version() {
        let mut conn = fresh();
        let steps = [
            "CREATE TABLE a (x INTEGER);",
            "CREATE TABLE b (y INTEGER); INSERT INTO nowhere VALUES (1);",
        ];
        assert!(migrate(&mut conn, &steps).is_err());
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert_eq!(tables(&conn), vec!["a".to_string()]);
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = fresh();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        match migrate(&mut conn, MIGRATIONS) {
            Err(DbError::TooNew { found, supported }) => {
                assert_eq!(found, SCHEMA_VERSION + 1);
                assert_eq!(supported, SCHEMA_VERSION);
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
        assert!(tables(&conn).is_empty());
    }
}
