//! From sqlx errors to the port's [`RepoError`]: the use cases only need to know whether a
//! rule of the data was broken (and which), whether the database is out of reach, or neither.

use shutter_app::ports::RepoError;

/// Maps a sqlx error, by kind, onto the port's error.
pub fn repo_error(err: sqlx::Error) -> RepoError {
    let conflict = match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Some(unique_rule(db.constraint().unwrap_or_else(|| db.message())))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            Some("missing_reference".to_owned())
        }
        _ => None,
    };
    if let Some(rule) = conflict {
        return RepoError::Conflict(rule);
    }
    if is_unavailable(&err) {
        RepoError::Unavailable(err.into())
    } else {
        RepoError::Other(err.into())
    }
}

/// Names the uniqueness rule a unique violation broke. PostgreSQL reports the constraint
/// (named in the migration); SQLite only the columns, in the message
/// (`UNIQUE constraint failed: users.username`).
pub(crate) fn unique_rule(what: &str) -> String {
    if what.contains("username") {
        "username".to_owned()
    } else if what.contains("ext_issuer") || what.contains("external_identity") {
        "external_identity".to_owned()
    } else {
        "duplicate".to_owned()
    }
}

/// Failures that say "try again later" rather than "this request is wrong": no connection
/// could be had or kept, or the database refused work for now.
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            matches!(
                code.as_deref(),
                // SQLite: SQLITE_BUSY / SQLITE_LOCKED after the busy timeout ran out;
                // SQLITE_FULL, the disk under the database is full.
                Some("5" | "6" | "261" | "517" | "13")
                // PostgreSQL: disk full, out of memory, too many connections, admin/crash
                // shutdown, cannot connect now; a database that is gone (a dropped or not yet
                // restored database, a replica being rebuilt); the connection exceptions.
                | Some("53100" | "53200" | "53300" | "57P01" | "57P02" | "57P03" | "3D000")
                | Some("08000" | "08001" | "08003" | "08004" | "08006")
                // A query a hot standby cancelled ("conflict with recovery"): try again.
                | Some("40001")
            )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeouts_and_io_errors_are_unavailable() {
        assert!(matches!(
            repo_error(sqlx::Error::PoolTimedOut),
            RepoError::Unavailable(_)
        ));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            repo_error(sqlx::Error::Io(refused)),
            RepoError::Unavailable(_)
        ));
        assert!(matches!(
            repo_error(sqlx::Error::RowNotFound),
            RepoError::Other(_)
        ));
    }
}
