//! `register`, `login`, `whoami`, `logout`, the stored credentials, token refresh, errors and
//! exit codes.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use shutter_core::config::DurationValue;

use crate::helpers::{finish, mode, noise, start_server, start_server_with, Cli, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_whoami_logout() -> Result<()> {
    let server = start_server().await?;
    let cli = Cli::new(&server)?;

    let registered = cli.register("alice").await?;
    assert_eq!(registered["user"]["username"], "alice");
    assert_eq!(registered["server"], server.url);
    assert!(
        registered.get("access_token").is_none(),
        "tokens are not printed"
    );

    // The credentials: private, in a private directory, tokens but never the password.
    let path = cli.config_dir().join("credentials.json");
    assert_eq!(mode(&path)?, 0o600);
    assert_eq!(mode(&cli.config_dir())?, 0o700);
    let text = std::fs::read_to_string(&path)?;
    assert!(!text.contains(PASSWORD));
    let creds = cli.credentials()?;
    assert_eq!(creds["username"], "alice");
    assert_eq!(creds["server"], format!("{}/", server.url));
    let refresh = creds["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!refresh.is_empty());

    let me = cli.json(&["whoami"]).await?;
    assert_eq!(me["username"], "alice");
    assert_eq!(me["tier"], "basic");
    let human = cli.run(&["whoami"]).await?.ok()?;
    assert!(human.stdout().starts_with("alice"), "{}", human.stdout());

    // Logout ends the session on the server too: its refresh token is dead.
    let out = cli.json(&["logout"]).await?;
    assert_eq!(out["logged_out"], true);
    assert!(!path.exists());
    let refreshed = server
        .http
        .post(server.url("/v1/auth/refresh"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await?;
    assert_eq!(refreshed.status().as_u16(), 401);
    let run = cli.run(&["--json", "whoami"]).await?;
    assert_eq!(run.code, 1);
    assert_eq!(run.error_code()?, "not_logged_in");
    assert!(run.stderr.contains("(not_logged_in)"), "{}", run.stderr);

    // Login with the password from the environment; the server is remembered.
    let mut login = cli.command(&["login", "--username", "alice"]);
    login.env("SHUTTER_PASSWORD", PASSWORD);
    let run = finish(login, None).await?.ok()?;
    assert!(run.stdout().contains("Logged in"), "{}", run.stdout());
    assert_eq!(mode(&path)?, 0o600);
    let run = finish(cli.command_without_server(&["--json", "whoami"]), None)
        .await?
        .ok()?;
    assert_eq!(run.json()?["username"], "alice");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_exit_1_with_the_server_code_and_bad_arguments_exit_2() -> Result<()> {
    let server = start_server().await?;
    let cli = Cli::new(&server)?;
    cli.register("bob").await?;
    let before = cli.credentials()?;

    // A wrong password: exit 1, the problem's code on stderr and as JSON on stdout.
    let run = cli
        .run_with_stdin(
            &["--json", "login", "--username", "bob", "--password-stdin"],
            "not the password\n",
        )
        .await?;
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.error_code()?, "invalid_credentials");
    assert_eq!(run.json()?["error"]["status"], 401);
    let run = cli
        .run_with_stdin(
            &["login", "--username", "bob", "--password-stdin"],
            "not the password\n",
        )
        .await?;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with("error: ") && run.stderr.contains("(invalid_credentials)"),
        "{}",
        run.stderr
    );
    // The session of before is untouched.
    assert_eq!(cli.credentials()?, before);

    // A taken username, and a file that is not there (a server error, an argument error).
    let run = cli
        .run_with_stdin(
            &[
                "--json",
                "register",
                "--username",
                "BOB",
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        )
        .await?;
    assert_eq!(run.code, 1);
    assert_eq!(run.error_code()?, "username_taken");
    let run = cli
        .run(&["files", "get", "0190b5a0-0000-7000-8000-000000000000"])
        .await?;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("(not_found)"), "{}", run.stderr);

    // Invalid arguments: exit 2, nothing sent.
    let missing = cli.work_dir().join("no-such-file.bin");
    let missing = missing.to_string_lossy();
    for args in [
        vec!["files", "frobnicate"],
        vec!["upload"],
        vec!["upload", missing.as_ref()],
        vec!["upload", "--limit-rate", "fast", missing.as_ref()],
        vec!["feed", "--limit", "0"],
        vec!["files", "ls", "--status", "lost"],
        vec!["post", "PHOTO.jpg"],
    ] {
        let run = cli.run(&args).await?;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(!run.stderr.is_empty(), "{args:?} says why");
    }
    let bad_server = cli.command_without_server(&["--server", "ftp://example.com", "whoami"]);
    let run = finish(bad_server, None).await?;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("http"), "{}", run.stderr);
    let run = cli.run(&["--json", "upload", missing.as_ref()]).await?;
    assert_eq!(run.code, 2);
    assert_eq!(run.error_code()?, "invalid_argument");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_refreshed_and_the_new_pair_stored() -> Result<()> {
    let server = start_server_with(|c| c.auth.access_token_ttl = DurationValue::secs(1)).await?;
    let cli = Cli::new(&server)?;
    cli.register("carol").await?;
    let before = cli.credentials()?;
    // Past the token's expiry and the server's 5 s of leeway.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let stale = server
        .http
        .get(server.url("/v1/users/me"))
        .bearer_auth(before["access_token"].as_str().unwrap_or_default())
        .send()
        .await?;
    assert_eq!(stale.status().as_u16(), 401, "the stored token has expired");

    let me = cli.json(&["whoami"]).await?;
    assert_eq!(me["username"], "carol");
    let after = cli.credentials()?;
    assert_ne!(after["refresh_token"], before["refresh_token"], "rotated");
    assert_ne!(after["access_token"], before["access_token"]);
    assert_eq!(mode(&cli.config_dir().join("credentials.json"))?, 0o600);
    // The old refresh token was used up; the stored one is the live one.
    let me = cli.json(&["whoami"]).await?;
    assert_eq!(me["username"], "carol");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_refreshing_at_once_share_one_rotation() -> Result<()> {
    let server = start_server_with(|c| c.auth.access_token_ttl = DurationValue::secs(1)).await?;
    let cli = Cli::new(&server)?;
    cli.register("judy").await?;
    let dir = cli.source_dir()?;
    let files: Vec<String> = (0..2)
        .map(|i| {
            let path = dir.join(format!("f{i}.bin"));
            std::fs::write(&path, noise(200_000, 100 + i))?;
            Ok(path.to_string_lossy().into_owned())
        })
        .collect::<Result<_>>()?;
    let before = cli.credentials()?;
    // Past the token's expiry and the server's 5 s of leeway.
    tokio::time::sleep(Duration::from_secs(8)).await;

    // Six processes at once, every one with the expired access token and the same refresh
    // token: presented twice, it would end the session (SPEC 2).
    let commands = [
        vec!["--json", "whoami"],
        vec!["--json", "whoami"],
        vec!["--json", "files", "ls"],
        vec!["--json", "feed"],
        vec!["--json", "upload", files[0].as_str()],
        vec!["--json", "upload", files[1].as_str()],
    ];
    let runs =
        futures::future::join_all(commands.iter().map(|args| finish(cli.command(args), None)))
            .await;
    for (args, run) in commands.iter().zip(runs) {
        let run = run?;
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    }
    let after = cli.credentials()?;
    assert_ne!(after["refresh_token"], before["refresh_token"], "rotated");

    // The session lives on: once the new access token has expired too, the stored refresh
    // token is still good (a reuse would have revoked its whole family).
    tokio::time::sleep(Duration::from_secs(7)).await;
    let me = cli.json(&["whoami"]).await?;
    assert_eq!(me["username"], "judy");
    let files_now = cli.json(&["files", "ls"]).await?;
    assert_eq!(files_now["items"].as_array().map(Vec::len), Some(2));
    Ok(())
}
