//! `feed`: one page of the home feed.

use serde_json::Value;

use super::Ctx;
use crate::cli::PageArgs;
use crate::error::CliResult;
use crate::output::text;

pub async fn run(ctx: &mut Ctx, args: PageArgs) -> CliResult<()> {
    let url = ctx.api.url("v1/feed")?;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(cursor) = args.cursor {
        query.push(("cursor", cursor));
    }
    let page: Value = ctx
        .api
        .json(|c, t| c.get(url.clone()).query(&query).bearer_auth(t))
        .await?;
    ctx.out.emit(&page, || render(&page));
    if let (false, Some(next)) = (ctx.out.json, page["next_cursor"].as_str()) {
        eprintln!("more: shutter-cli feed --cursor {next}");
    }
    Ok(())
}

fn render(page: &Value) -> String {
    let posts = page["items"].as_array().cloned().unwrap_or_default();
    if posts.is_empty() {
        return "The feed is empty.".to_owned();
    }
    let mut out = String::new();
    for post in &posts {
        let photos = post["media"].as_array().map_or(0, Vec::len);
        let likes = post["like_count"].as_i64().unwrap_or(0);
        let comments = post["comment_count"].as_i64().unwrap_or(0);
        out.push_str(&format!(
            "{}  @{}  {likes} like{}  {comments} comment{}  {photos} photo{}  {}\n",
            text(post, "created_at"),
            text(&post["author"], "username"),
            plural(likes),
            plural(comments),
            plural(photos as i64),
            text(post, "id"),
        ));
        for line in text(post, "caption").lines() {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn posts_read_as_a_list() {
        let page = json!({"items": [{
            "id": "p1", "caption": "hello\nworld", "created_at": "2026-01-01T00:00:00.000Z",
            "author": {"username": "alice"}, "like_count": 1, "comment_count": 2, "media": [{}]
        }], "next_cursor": null});
        let text = render(&page);
        assert!(text.contains("@alice  1 like  2 comments  1 photo  p1"));
        assert!(text.contains("    hello\n    world"));
    }
}
