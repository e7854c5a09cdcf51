//! Keyset pagination: a cursor names the last item of a page by `(created_at, id)`, so the next
//! page starts strictly after it and items inserted meanwhile never shift what comes next.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::{Id, Timestamp};

/// The position after which the next page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: Timestamp,
    pub id: Id,
}

/// The cursor text could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the cursor does not parse")]
pub struct InvalidCursor;

impl Cursor {
    pub fn new(created_at: Timestamp, id: Id) -> Self {
        Cursor { created_at, id }
    }

    /// Opaque text for clients: base64url of `<millis>.<id>`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.created_at.millis(), self.id))
    }

    pub fn decode(text: &str) -> Result<Self, InvalidCursor> {
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidCursor)?;
        let raw = String::from_utf8(raw).map_err(|_| InvalidCursor)?;
        let (ms, id) = raw.split_once('.').ok_or(InvalidCursor)?;
        let ms: i64 = ms.parse().map_err(|_| InvalidCursor)?;
        let id: Id = id.parse().map_err(|_| InvalidCursor)?;
        Ok(Cursor::new(Timestamp::from_millis(ms), id))
    }
}

/// A validated page request: `limit` in 1..=100 and an optional starting cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

    pub fn first(limit: u32) -> Self {
        PageRequest { limit, after: None }
    }
}

/// One page of results and the cursor of the next page, if there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in order: the extra row only tells
    /// that another page exists; the cursor names the last row kept.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> Cursor) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&key)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor::new(Timestamp::from_millis(1234), Id::new());
        assert_eq!(Cursor::decode(&c.encode()).ok(), Some(c));
        for bad in [
            "",
            "!!",
            "bm90LWEtY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("12.nope"),
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn page_keeps_limit_rows_and_points_at_the_last() {
        let rows = vec![1, 2, 3];
        let key = |n: &i32| Cursor::new(Timestamp::from_millis(*n as i64), Id::default());
        let page = Page::from_rows(rows.clone(), 2, key);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor.map(|c| c.created_at.millis()), Some(2));
        let page = Page::from_rows(rows, 3, key);
        assert!(page.next_cursor.is_none());
    }
}
