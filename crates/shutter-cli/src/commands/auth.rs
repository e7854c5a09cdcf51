//! `register`, `login`, `logout`, `whoami`.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{json, Value};

use super::Ctx;
use crate::api::{error_of, AuthResponse, REQUEST_TIMEOUT};
use crate::cli::{LoginArgs, PasswordArgs, RegisterArgs};
use crate::error::{CliError, CliResult};
use crate::output::text;

pub async fn register(ctx: &mut Ctx, args: RegisterArgs) -> CliResult<()> {
    let username = username(args.username, &args.password)?;
    let password = password(&args.password)?;
    let mut body = json!({ "username": username, "password": password });
    if let Some(name) = args.display_name {
        body["display_name"] = Value::String(name);
    }
    let url = ctx.api.url("v1/auth/register")?;
    let request = ctx.api.http().post(url).json(&body);
    let auth: AuthResponse = ctx.api.anon_json(request).await?;
    signed_in(ctx, &auth, "Registered and logged in").await
}

pub async fn login(ctx: &mut Ctx, args: LoginArgs) -> CliResult<()> {
    let username = username(args.username, &args.password)?;
    let password = password(&args.password)?;
    let url = ctx.api.url("v1/auth/login")?;
    let request = ctx
        .api
        .http()
        .post(url)
        .json(&json!({ "username": username, "password": password }));
    let auth: AuthResponse = ctx.api.anon_json(request).await?;
    signed_in(ctx, &auth, "Logged in").await
}

async fn signed_in(ctx: &mut Ctx, auth: &AuthResponse, what: &str) -> CliResult<()> {
    ctx.api.adopt(auth).await?;
    let server = ctx.api.base().as_str().trim_end_matches('/').to_owned();
    ctx.out
        .emit(&json!({ "server": server, "user": auth.user }), || {
            format!("{what} to {server} as {}.", text(&auth.user, "username"))
        });
    Ok(())
}

pub async fn logout(ctx: &mut Ctx) -> CliResult<()> {
    let server = ctx.api.base().as_str().trim_end_matches('/').to_owned();
    let Some(mut session) = ctx.api.drop_session() else {
        ctx.out
            .emit(&json!({ "server": server, "logged_out": false }), || {
                format!("Not logged in to {server}.")
            });
        return Ok(());
    };
    // Holding the credentials' lock: a refresh in another process can neither rotate the
    // pair under this logout nor store a new one after it. The stored pair is the live one.
    // Logging out must work even if the lock cannot be had (another process holding it for
    // minutes): then it goes on without.
    let _lock = ctx.api.store().lock_credentials().await.ok();
    // A login in between may have stored another user's session: that one stays.
    let mut replaced = false;
    if let Some(stored) = ctx.api.store().load_session()? {
        if stored.server == session.server && stored.user_id == session.user_id {
            session = stored;
        } else {
            replaced = true;
        }
    }
    let url = ctx.api.url("v1/auth/logout")?;
    let sent = ctx
        .api
        .http()
        .post(url)
        .json(&json!({ "refresh_token": session.refresh_token }))
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await;
    // The credentials go whatever the server says: logging out must always work here.
    if !replaced {
        ctx.api.store().delete_session()?;
    }
    let refused = match sent {
        Ok(response) if response.status().is_success() => None,
        // The session had ended on the server already.
        Ok(response) if response.status() == reqwest::StatusCode::UNAUTHORIZED => None,
        Ok(response) => Some(error_of(response).await),
        Err(err) => Some(CliError::from(err)),
    };
    if let Some(err) = refused {
        return Err(CliError {
            detail: format!(
                "the credentials were deleted here, but the server did not end the session: {}",
                err.detail
            ),
            ..err
        });
    }
    ctx.out.emit(
        &json!({ "server": server, "logged_out": true, "username": session.username }),
        || format!("Logged out of {server}."),
    );
    Ok(())
}

pub async fn whoami(ctx: &mut Ctx) -> CliResult<()> {
    let user: Value = ctx.api.get("v1/users/me").await?;
    let server = ctx.api.base().as_str().trim_end_matches('/').to_owned();
    ctx.out.emit(&user, || {
        let display = text(&user, "display_name");
        let name = if display.is_empty() {
            String::new()
        } else {
            format!(" ({display})")
        };
        format!(
            "{}{name}\n  id:     {}\n  tier:   {}\n  server: {server}\n  posts: {}, followers: {}, following: {}",
            text(&user, "username"),
            text(&user, "id"),
            text(&user, "tier"),
            user["posts_count"],
            user["followers_count"],
            user["following_count"],
        )
    });
    Ok(())
}

/// The username: given, or asked for on a terminal.
fn username(given: Option<String>, password: &PasswordArgs) -> CliResult<String> {
    if let Some(name) = given {
        return Ok(name);
    }
    if password.password_stdin || !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "--username is required when standard input is not a terminal",
        ));
    }
    eprint!("Username: ");
    let _ = std::io::stderr().flush();
    let line = read_line()?;
    if line.is_empty() {
        return Err(CliError::usage("a username is required"));
    }
    Ok(line)
}

/// The password: from stdin (`--password-stdin`), `SHUTTER_PASSWORD`, or a prompt that does
/// not echo.
fn password(args: &PasswordArgs) -> CliResult<String> {
    if args.password_stdin {
        return read_line();
    }
    if let Ok(password) = std::env::var("SHUTTER_PASSWORD") {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "no password: pass --password-stdin, set SHUTTER_PASSWORD, or run on a terminal",
        ));
    }
    rpassword::prompt_password("Password: ")
        .map_err(|e| CliError::new("io_error", format!("reading the password: {e}")))
}

/// One line of stdin without its line ending.
fn read_line() -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::new("io_error", format!("reading standard input: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
