//! The little that differs between the SQL of the two dialects once the statements are
//! written portably: how placeholders are spelled.

use std::borrow::Cow;

/// Rewrites `?` placeholders to PostgreSQL's numbered `$1, $2, …`, in order of appearance.
///
/// A `?` inside a single-quoted literal or a double-quoted identifier is left alone (`''` and
/// `""` escapes just toggle the state twice, which keeps the count right). Text without any
/// placeholder is returned as it is.
pub fn numbered_placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0u32;
    let mut quote: Option<char> = None;
    for ch in sql.chars() {
        match (quote, ch) {
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            (None, '\'' | '"') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        out.push(ch);
    }
    Cow::Owned(out)
}

/// `(?, ?, …, ?)` with `n` placeholders, for `IN` lists. `n` must be at least one.
pub fn placeholder_list(n: usize) -> String {
    let mut out = String::with_capacity(2 + n * 3);
    out.push('(');
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('?');
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ? AND (c < ? OR d = ?) LIMIT ?"),
            "SELECT a FROM t WHERE b = $1 AND (c < $2 OR d = $3) LIMIT $4"
        );
    }

    #[test]
    fn question_marks_in_literals_and_identifiers_are_kept() {
        assert_eq!(
            numbered_placeholders(
                "SELECT '?', 'it''s ?', \"odd?col\" FROM t WHERE x = ? AND y = 'a?' AND z = ?"
            ),
            "SELECT '?', 'it''s ?', \"odd?col\" FROM t WHERE x = $1 AND y = 'a?' AND z = $2"
        );
    }

    #[test]
    fn text_without_placeholders_is_borrowed() {
        assert!(matches!(
            numbered_placeholders("SELECT 1"),
            Cow::Borrowed("SELECT 1")
        ));
    }

    #[test]
    fn more_than_nine_placeholders_get_two_digits() {
        let sql = format!("VALUES {}", placeholder_list(11));
        assert_eq!(
            numbered_placeholders(&sql),
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
    }

    #[test]
    fn placeholder_lists_have_n_marks() {
        assert_eq!(placeholder_list(1), "(?)");
        assert_eq!(placeholder_list(3), "(?, ?, ?)");
    }
}
