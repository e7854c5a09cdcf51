//! `post` and `feed`.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::helpers::{signed_up, start_server, testdata, Cli};

fn arg(path: &str) -> String {
    testdata(path).to_string_lossy().into_owned()
}

fn feed_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| p["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_two_photos_waits_until_published_and_shows_in_the_feed() -> Result<()> {
    let server = start_server().await?;
    let cli = Cli::new(&server)?;
    cli.register("frank").await?;
    let jpeg = arg("photos/kleiber_1080x1080.jpg");
    let webp = arg("photos/onestandsout_1200x750.webp");
    let args = [
        "--json",
        "post",
        "--caption",
        "Nuthatch and moss",
        jpeg.as_str(),
        webp.as_str(),
        "--timeout",
        "180",
    ];

    let run = cli.run(&args).await?.ok()?;
    let post = run.json()?;
    assert_eq!(post["status"], "published", "{post}");
    assert_eq!(post["caption"], "Nuthatch and moss");
    assert_eq!(post["author"]["username"], "frank");
    let media = post["media"].as_array().context("media")?;
    assert_eq!(media.len(), 2);
    assert_eq!(media[0]["content_type"], "image/jpeg");
    assert_eq!(media[1]["content_type"], "image/webp");
    for m in media {
        assert_eq!(m["status"], "ready", "{m}");
        assert!(m["variants"]["thumb"]["url"].is_string(), "{m}");
    }
    assert_eq!(media[0]["width"], 1080);
    let post_id = post["id"].as_str().context("post id")?.to_owned();

    let feed = cli.json(&["feed"]).await?;
    assert_eq!(feed_ids(&feed), vec![post_id.clone()]);
    let human = cli.run(&["feed"]).await?.ok()?;
    let text = human.stdout();
    assert!(
        text.contains("@frank") && text.contains("Nuthatch and moss") && text.contains(&post_id),
        "{text}"
    );

    // The same command again is the same post (its Idempotency-Key), not a second one.
    let run = cli.run(&args).await?.ok()?;
    assert_eq!(run.json()?["id"], post_id.as_str());
    assert!(run.stderr.contains("resuming post"), "{}", run.stderr);
    let feed = cli.json(&["feed", "--limit", "10"]).await?;
    assert_eq!(feed_ids(&feed), vec![post_id]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_sent_with_put_tickets_without_waiting() -> Result<()> {
    let server = start_server().await?;
    let cli = Cli::new(&server)?;
    cli.register("grace").await?;
    let png = arg("photos/path_gray_1200x750.png");
    let post = cli
        .json(&[
            "post",
            "--no-wait",
            "--upload-via",
            "put",
            "--caption",
            "Grey path",
            png.as_str(),
        ])
        .await?;
    let status = post["status"].as_str().unwrap_or_default();
    assert!(status == "pending" || status == "published", "{post}");
    let post_id = post["id"].as_str().context("post id")?.to_owned();
    let token = server.token("grace").await?;
    for _ in 0..1200 {
        let (_, post) = server
            .get(&format!("/v1/posts/{post_id}"), Some(&token))
            .await?;
        match post["status"].as_str() {
            Some("published") => {
                assert_eq!(post["media"][0]["content_type"], "image/png");
                return Ok(());
            }
            Some("pending") => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => bail!("unexpected post {post}"),
        }
    }
    bail!("the post was never published")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_photo_is_not_an_image_fails_with_its_code() -> Result<()> {
    let server = start_server().await?;
    let cli = Cli::new(&server)?;
    cli.register("heidi").await?;
    let fake = arg("hostile/text_named.jpg");
    let run = cli
        .run(&["--json", "post", "--caption", "not a photo", fake.as_str()])
        .await?;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.error_code()?, "content_mismatch");
    assert!(run.stderr.contains("(content_mismatch)"), "{}", run.stderr);
    // Nothing of it reaches the feed.
    let feed = cli.json(&["feed"]).await?;
    assert!(feed_ids(&feed).is_empty(), "{feed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_photo_is_a_new_post_and_a_deleted_post_is_made_again() -> Result<()> {
    let (server, cli, token) = signed_up("oscar").await?;
    let jpeg = arg("photos/kleiber_1080x1080.jpg");
    let args = ["--json", "post", "--caption", "Same words", jpeg.as_str()];
    let first = cli.run(&args).await?.ok()?.json()?;
    let first_id = first["id"].as_str().context("post id")?.to_owned();

    // The same caption and bytes under another name: another request, so another post (not
    // 422 idempotency_key_reused).
    let renamed = cli.source_dir()?.join("renamed.jpg");
    std::fs::copy(testdata("photos/kleiber_1080x1080.jpg"), &renamed)?;
    let renamed = renamed.to_string_lossy().into_owned();
    let run = cli
        .run(&[
            "--json",
            "post",
            "--caption",
            "Same words",
            renamed.as_str(),
        ])
        .await?
        .ok()?;
    let second = run.json()?;
    assert_eq!(second["status"], "published", "{second}");
    assert_ne!(second["id"], first_id.as_str());
    let media_id = second["media"][0]["file_id"].as_str().unwrap_or_default();
    let (_, media) = server
        .get(&format!("/v1/files/{media_id}"), Some(&token))
        .await?;
    assert_eq!(media["filename"], "renamed.jpg", "{media}");
    assert!(!run.stderr.contains("resuming post"), "{}", run.stderr);

    // The first post deleted: the first command again makes a new one instead of replaying
    // the dead one (404) for 24 h...
    let deleted = server
        .http
        .delete(server.url(&format!("/v1/posts/{first_id}")))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(deleted.status().as_u16(), 204);
    let run = cli.run(&args).await?.ok()?;
    let third = run.json()?;
    assert_eq!(third["status"], "published", "{third}");
    let third_id = third["id"].as_str().context("post id")?.to_owned();
    assert_ne!(third_id, first_id);
    assert_ne!(third["id"], second["id"]);
    assert!(run.stderr.contains("deleted"), "{}", run.stderr);
    // ...and, run once more, finds that new one again.
    let run = cli.run(&args).await?.ok()?;
    assert_eq!(run.json()?["id"], third_id.as_str());
    assert!(run.stderr.contains("resuming post"), "{}", run.stderr);
    Ok(())
}
