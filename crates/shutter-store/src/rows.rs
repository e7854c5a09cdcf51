//! Reading result rows by column name, whatever ran the statement: sqlx on either dialect, or
//! the embedded database's inline reader ([`crate::inline`]). The mappers of the hot rows
//! (users, posts, comments) are written once, against [`Columns`].

use shutter_app::ports::RepoResult;
use shutter_core::domain::{FileStatus, PostStatus, Role, Tier, Visibility};
use shutter_core::model::{Comment, Failure, FileRecord, PostRecord, User, UserSummary};
use shutter_core::Timestamp;
use sqlx::Row;

use crate::error::repo_error;
use crate::files::{dimension_from_db, from_db, parse_error_code};
use crate::repo::{corrupt, parse_id};

/// One row of a result, read by column name.
pub(crate) trait Columns {
    fn text(&self, col: &str) -> RepoResult<String>;
    fn opt_text(&self, col: &str) -> RepoResult<Option<String>>;
    fn int(&self, col: &str) -> RepoResult<i64>;
    fn opt_int(&self, col: &str) -> RepoResult<Option<i64>>;
    /// A boolean: PostgreSQL's `boolean`, SQLite's 0 or 1.
    fn flag(&self, col: &str) -> RepoResult<bool>;
}

/// A statement parameter, bound the same way by every executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// Each id as text, for a statement ending in [`crate::dialect::placeholder_list`].
pub(crate) fn id_binds(ids: &[shutter_core::Id]) -> Vec<Bind> {
    ids.iter().map(|id| Bind::Text(id.to_string())).collect()
}

macro_rules! sqlx_columns {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, col: &str) -> RepoResult<String> {
                self.try_get(col).map_err(repo_error)
            }
            fn opt_text(&self, col: &str) -> RepoResult<Option<String>> {
                self.try_get(col).map_err(repo_error)
            }
            /// `BIGINT`, or `INTEGER` (PostgreSQL's 32-bit positions).
            fn int(&self, col: &str) -> RepoResult<i64> {
                self.try_get::<i64, _>(col)
                    .or_else(|e| match self.try_get::<i32, _>(col) {
                        Ok(n) => Ok(i64::from(n)),
                        Err(_) => Err(repo_error(e)),
                    })
            }
            fn opt_int(&self, col: &str) -> RepoResult<Option<i64>> {
                self.try_get(col).map_err(repo_error)
            }
            fn flag(&self, col: &str) -> RepoResult<bool> {
                self.try_get(col).map_err(repo_error)
            }
        }
    };
}

sqlx_columns!(sqlx::sqlite::SqliteRow);
sqlx_columns!(sqlx::postgres::PgRow);

/// A row of the embedded database read on the calling thread ([`crate::inline`],
/// [`crate::write`]), by column name through the statement's names read once.
///
/// rusqlite's own lookup by name asks SQLite for every column's name and compares each
/// without regard to case, for every value read: with twenty columns, most of the cost of
/// mapping a row (a fifth of a file listing's time). Here the names are the statement's,
/// fetched once, and the search starts after the column found last, as the mappers read
/// columns in the order the statements list them.
pub(crate) struct NamedRow<'a> {
    row: &'a rusqlite::Row<'a>,
    names: &'a [String],
    next: std::cell::Cell<usize>,
}

impl<'a> NamedRow<'a> {
    /// `names` must be the names of `row`'s statement's columns, in order.
    pub(crate) fn new(row: &'a rusqlite::Row<'a>, names: &'a [String]) -> Self {
        NamedRow {
            row,
            names,
            next: std::cell::Cell::new(0),
        }
    }

    /// The names of a statement's columns, for [`NamedRow::new`].
    pub(crate) fn names_of(stmt: &rusqlite::Statement<'_>) -> Vec<String> {
        stmt.column_names().into_iter().map(str::to_owned).collect()
    }

    fn index(&self, col: &str) -> rusqlite::Result<usize> {
        let n = self.names.len();
        let start = self.next.get();
        let found = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.names[i] == col)
            // SQLite's names are matched without regard to case, as rusqlite does.
            .or_else(|| {
                self.names
                    .iter()
                    .position(|name| name.eq_ignore_ascii_case(col))
            })
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(col.to_owned()))?;
        self.next.set(found + 1);
        Ok(found)
    }

    fn get<T: rusqlite::types::FromSql>(&self, col: &str) -> RepoResult<T> {
        self.index(col)
            .and_then(|i| self.row.get(i))
            .map_err(crate::inline::repo_error)
    }
}

impl Columns for NamedRow<'_> {
    fn text(&self, col: &str) -> RepoResult<String> {
        self.get(col)
    }
    fn opt_text(&self, col: &str) -> RepoResult<Option<String>> {
        self.get(col)
    }
    fn int(&self, col: &str) -> RepoResult<i64> {
        self.get(col)
    }
    fn opt_int(&self, col: &str) -> RepoResult<Option<i64>> {
        self.get(col)
    }
    fn flag(&self, col: &str) -> RepoResult<bool> {
        self.get(col)
    }
}

/// A [`q::USER_COLUMNS`](crate::queries::USER_COLUMNS) row.
pub(crate) fn user(row: &dyn Columns) -> RepoResult<User> {
    let tier = row.text("tier")?;
    let role = row.text("role")?;
    Ok(User {
        id: parse_id(&row.text("id")?)?,
        username: row.text("username")?,
        display_name: row.text("display_name")?,
        bio: row.text("bio")?,
        tier: Tier::parse(&tier).ok_or_else(|| corrupt("tier", &tier))?,
        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        created_at: Timestamp::from_millis(row.int("created_at")?),
        followers_count: row.int("followers_count")?,
        following_count: row.int("following_count")?,
        posts_count: row.int("posts_count")?,
    })
}

/// The `author_*` columns of a post or comment row.
pub(crate) fn author(row: &dyn Columns) -> RepoResult<UserSummary> {
    Ok(UserSummary {
        id: parse_id(&row.text("author_id")?)?,
        username: row.text("author_username")?,
        display_name: row.text("author_display_name")?,
    })
}

/// A [`q::POST_COLUMNS`](crate::queries::POST_COLUMNS) row.
pub(crate) fn post(row: &dyn Columns) -> RepoResult<PostRecord> {
    let status = row.text("status")?;
    Ok(PostRecord {
        id: parse_id(&row.text("id")?)?,
        author: author(row)?,
        caption: row.text("caption")?,
        status: PostStatus::parse(&status).ok_or_else(|| corrupt("post status", &status))?,
        like_count: row.int("like_count")?,
        comment_count: row.int("comment_count")?,
        liked_by_me: row.flag("liked_by_me")?,
        created_at: Timestamp::from_millis(row.int("created_at")?),
        updated_at: Timestamp::from_millis(row.int("updated_at")?),
    })
}

/// A [`q::COMMENT_COLUMNS`](crate::queries::COMMENT_COLUMNS) row.
pub(crate) fn comment(row: &dyn Columns) -> RepoResult<Comment> {
    Ok(Comment {
        id: parse_id(&row.text("id")?)?,
        post_id: parse_id(&row.text("post_id")?)?,
        author: author(row)?,
        text: row.text("text")?,
        created_at: Timestamp::from_millis(row.int("created_at")?),
        updated_at: Timestamp::from_millis(row.int("updated_at")?),
    })
}

/// One row of a `FILE_ROWS_HEAD … FILE_ROWS_TAIL` statement: the file's columns and, in
/// `tag`, one of its tags (rows repeat per tag; [`fold_tags`] joins them).
pub(crate) fn file(row: &dyn Columns) -> RepoResult<FileRecord> {
    let visibility = row.text("visibility")?;
    let status = row.text("status")?;
    let failure = match row.opt_text("failure_code")? {
        Some(code) => Some(Failure {
            code: parse_error_code(&code)?,
            detail: row.opt_text("failure_detail")?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(FileRecord {
        id: parse_id(&row.text("id")?)?,
        owner_id: parse_id(&row.text("owner_id")?)?,
        filename: row.text("filename")?,
        content_type: row.text("content_type")?,
        size: from_db("size", row.int("size")?)?,
        declared_sha256: row.opt_text("declared_sha256")?,
        declared_md5: row.opt_text("declared_md5")?,
        sha256: row.opt_text("sha256")?,
        md5: row.opt_text("md5")?,
        visibility: Visibility::parse(&visibility)
            .ok_or_else(|| corrupt("visibility", &visibility))?,
        tags: row.opt_text("tag")?.into_iter().collect(),
        status: FileStatus::parse(&status).ok_or_else(|| corrupt("file status", &status))?,
        bytes_received: from_db("bytes_received", row.int("bytes_received")?)?,
        failure,
        width: dimension_from_db("width", row.opt_int("width")?)?,
        height: dimension_from_db("height", row.opt_int("height")?)?,
        blurhash: row.opt_text("blurhash")?,
        upload_expires_at: Timestamp::from_millis(row.int("upload_expires_at")?),
        created_at: Timestamp::from_millis(row.int("created_at")?),
        updated_at: Timestamp::from_millis(row.int("updated_at")?),
    })
}

/// Joins consecutive rows of one file (one per tag) into one file with all its tags.
pub(crate) fn fold_tags(rows: Vec<FileRecord>) -> Vec<FileRecord> {
    let mut files: Vec<FileRecord> = Vec::with_capacity(rows.len());
    for row in rows {
        match files.last_mut() {
            Some(file) if file.id == row.id => file.tags.extend(row.tags),
            _ => files.push(row),
        }
    }
    files
}
