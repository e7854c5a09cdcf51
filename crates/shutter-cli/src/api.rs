//! The HTTP side: the server's base URL, one `reqwest` client, and the session. Every
//! authenticated call goes through [`Api::send`], which refreshes the access token when the
//! server says it expired (refresh tokens rotate: the new pair is stored at once, under a
//! lock shared with other processes of this client), and which sends the token to the
//! server's origin only.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use crate::error::{CliError, CliResult};
use crate::store::{Session, Store};
use crate::transfer::Activity;

/// The server when neither `--server`, `SHUTTER_URL` nor a stored session names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// A plain request (not an upload or download) that takes longer than this has failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Parses a server URL and gives it the one form it is stored and compared in: http(s), no
/// query or fragment, the path ending in `/` (so relative API paths join below it).
pub fn normalise_server(raw: &str) -> CliResult<Url> {
    let mut url = Url::parse(raw.trim())
        .map_err(|e| CliError::usage(format!("--server {raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CliError::usage(format!(
            "--server {raw:?} must be an http:// or https:// URL"
        )));
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The body of register, login and refresh.
#[derive(Debug, Deserialize)]
pub struct AuthResponse {
    pub user: Value,
    pub access_token: String,
    pub refresh_token: String,
}

pub struct Api {
    base: Url,
    http: Client,
    store: Store,
    session: Option<Session>,
}

impl Api {
    pub fn new(base: Url, store: Store, session: Option<Session>) -> CliResult<Api> {
        // No client-wide read timeout: reqwest's (0.12) also runs from the start of a request
        // to its answer, which would cut a slow upload's PATCH. Transfers watch their own
        // progress instead (`transfer::Activity`); plain requests have REQUEST_TIMEOUT. A
        // redirect to another host loses the Authorization header (reqwest drops it).
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("shutter-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Api {
            base,
            http,
            store,
            session,
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn http(&self) -> &Client {
        &self.http
    }

    /// An API path (`v1/files`, with or without a leading `/`) resolved against the server's
    /// base, or an absolute URL the server handed out (see [`Api::rebase`]).
    pub fn url(&self, path: &str) -> CliResult<Url> {
        let bad = |e: url::ParseError| CliError::new("internal", format!("bad URL {path:?}: {e}"));
        if path.starts_with("http://") || path.starts_with("https://") {
            return Url::parse(path).map(|url| self.rebase(url)).map_err(bad);
        }
        self.base.join(path.trim_start_matches('/')).map_err(bad)
    }

    /// An absolute URL from the server, as this client should use it. The server builds its
    /// URLs (tus `Location`, tickets' `tus_url` and `url`, `complete_url`) from its
    /// `public_url`, which may be unset (`http://<listen address>`) or name the server as
    /// others reach it: an API URL (its path starting with `/v1/`) that is not below the base
    /// is the server's own, and is moved onto the base, as the web app does. Anything else (a
    /// presigned URL of the object store) stays as it is, and gets no token (see
    /// [`Api::is_ours`]).
    pub fn rebase(&self, url: Url) -> Url {
        let below_base = self.is_ours(&url) && url.path().starts_with(self.base.path());
        if below_base || !url.path().starts_with("/v1/") {
            return url;
        }
        match self.base.join(url.path().trim_start_matches('/')) {
            Ok(mut rebased) => {
                rebased.set_query(url.query());
                rebased
            }
            Err(_) => url,
        }
    }

    /// Whether `url` is on the server's origin (scheme, host and port of `--server`): the
    /// only place the session's token is ever sent.
    pub fn is_ours(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }

    pub fn session(&self) -> CliResult<&Session> {
        self.session.as_ref().ok_or_else(|| {
            CliError::new(
                "not_logged_in",
                format!(
                    "not logged in to {}: run `shutter-cli login` first",
                    self.base.as_str().trim_end_matches('/')
                ),
            )
        })
    }

    /// Stores the session of a register or login answer (holding the credentials' lock, so
    /// that a refresh running in another process cannot write its pair over it).
    pub async fn adopt(&mut self, auth: &AuthResponse) -> CliResult<Session> {
        let session = self.session_of(auth);
        let _lock = self.store.lock_credentials().await?;
        self.store.save_session(&session)?;
        self.session = Some(session.clone());
        Ok(session)
    }

    fn session_of(&self, auth: &AuthResponse) -> Session {
        Session {
            server: self.base.to_string(),
            username: auth.user["username"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            user_id: auth.user["id"].as_str().unwrap_or_default().to_owned(),
            access_token: auth.access_token.clone(),
            refresh_token: auth.refresh_token.clone(),
        }
    }

    /// Forgets the session here (not on the server).
    pub fn drop_session(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// An unauthenticated JSON request; its answer checked and parsed.
    pub async fn anon_json<T: DeserializeOwned>(&self, request: RequestBuilder) -> CliResult<T> {
        let response = self.execute(request.timeout(REQUEST_TIMEOUT), None).await?;
        json_body(response).await
    }

    /// Sends an authenticated request built by `build` (given the client and the access
    /// token). A 401 is answered by a refresh and one more try; any other status is the
    /// caller's to check. `build` may run more than once, so it must build the whole request.
    pub async fn send<F>(&mut self, build: F) -> CliResult<Response>
    where
        F: Fn(&Client, &str) -> RequestBuilder,
    {
        self.send_watched(build, None).await
    }

    /// [`Api::send`] for a transfer: each try fails with `timeout` when `activity` says that
    /// it stalled.
    pub async fn send_watched<F>(
        &mut self,
        build: F,
        activity: Option<&Activity>,
    ) -> CliResult<Response>
    where
        F: Fn(&Client, &str) -> RequestBuilder,
    {
        // A refresh may only take the pair another process stored meanwhile; when that
        // pair's access token has expired too, a second refresh trades it.
        let mut tries = 0;
        loop {
            tries += 1;
            let token = self.session()?.access_token.clone();
            let response = self.execute(build(&self.http, &token), activity).await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let err = error_of(response).await;
            if tries > 2 || !refreshable(&err) {
                return Err(err);
            }
            let traded = self.refresh().await?;
            if traded {
                tries = 2;
            }
        }
    }

    /// Sends a request, unless it carries an Authorization header to another origin than the
    /// server's: the token is never sent there, whatever URL the server handed out.
    async fn execute(
        &self,
        request: RequestBuilder,
        activity: Option<&Activity>,
    ) -> CliResult<Response> {
        let (client, request) = request.build_split();
        let request = request?;
        if request.headers().contains_key(AUTHORIZATION) && !self.is_ours(request.url()) {
            return Err(CliError::new(
                "untrusted_url",
                format!(
                    "the server handed out a URL on {}, not on {}: the session is only sent to \
                     the server (is its public_url right?)",
                    request.url().origin().ascii_serialization(),
                    self.base.origin().ascii_serialization()
                ),
            ));
        }
        match activity {
            Some(activity) => activity.watch(client.execute(request)).await,
            None => Ok(client.execute(request).await?),
        }
    }

    /// An authenticated request whose success answer is JSON.
    pub async fn json<T, F>(&mut self, build: F) -> CliResult<T>
    where
        T: DeserializeOwned,
        F: Fn(&Client, &str) -> RequestBuilder,
    {
        let response = self
            .send(|c, t| build(c, t).timeout(REQUEST_TIMEOUT))
            .await?;
        json_body(response).await
    }

    /// An authenticated request whose success answer has no body worth reading.
    pub async fn empty<F>(&mut self, build: F) -> CliResult<()>
    where
        F: Fn(&Client, &str) -> RequestBuilder,
    {
        let response = self
            .send(|c, t| build(c, t).timeout(REQUEST_TIMEOUT))
            .await?;
        checked(response).await.map(drop)
    }

    /// `GET path` (authenticated), parsed.
    pub async fn get<T: DeserializeOwned>(&mut self, path: &str) -> CliResult<T> {
        let url = self.url(path)?;
        self.json(|c, t| c.get(url.clone()).bearer_auth(t)).await
    }

    /// Trades the refresh token for a new pair and stores it; whether it did (`false`: the
    /// pair another process stored meanwhile was taken instead).
    ///
    /// Refresh tokens rotate, and presenting one that has been rotated already ends the
    /// session everywhere. So the stored pair is read again, the refresh made and the new
    /// pair stored, all holding the credentials' lock: a process that finds the stored pair
    /// newer than its own takes that one rather than presenting its own again.
    pub async fn refresh(&mut self) -> CliResult<bool> {
        let current = self.session()?.clone();
        let _lock = self.store.lock_credentials().await?;
        let store_it = match self.store.load_session()? {
            Some(stored)
                if stored.server == current.server && stored.user_id == current.user_id =>
            {
                if stored.refresh_token != current.refresh_token {
                    self.session = Some(stored);
                    return Ok(false);
                }
                true
            }
            None => {
                return Err(CliError::new(
                    "not_logged_in",
                    "logged out while this command ran: run `shutter-cli login` again",
                ))
            }
            // Another login replaced this one meanwhile: it stays the stored one.
            Some(_) => false,
        };
        let url = self.url("v1/auth/refresh")?;
        let request = self
            .http
            .post(url)
            .json(&json!({ "refresh_token": current.refresh_token }))
            .timeout(REQUEST_TIMEOUT);
        let response = self.execute(request, None).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            let err = error_of(response).await;
            return Err(CliError::new(
                &err.code,
                format!(
                    "the session has ended ({}): run `shutter-cli login` again",
                    err.detail
                ),
            ));
        }
        let auth: AuthResponse = json_body(response).await?;
        let session = self.session_of(&auth);
        if store_it {
            self.store.save_session(&session)?;
        }
        self.session = Some(session);
        Ok(true)
    }
}

/// Whether a 401 is worth a refresh: an expired token, or a 401 without a problem body (a
/// HEAD's), which is most likely one.
fn refreshable(err: &CliError) -> bool {
    err.code == "token_expired" || err.problem.is_none()
}

/// The response if it is a success, else its problem as an error.
pub async fn checked(response: Response) -> CliResult<Response> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(error_of(response).await)
    }
}

/// A success answer's JSON body.
pub async fn json_body<T: DeserializeOwned>(response: Response) -> CliResult<T> {
    let response = checked(response).await?;
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        CliError::new(
            "internal",
            format!("the server's answer is not the expected JSON: {e}"),
        )
    })
}

/// The error an answer stands for (its problem+json, or its status), with the wait its
/// `Retry-After` asks for.
pub async fn error_of(response: Response) -> CliError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.bytes().await.unwrap_or_default();
    CliError {
        retry_after,
        ..CliError::from_response(status, &body)
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by Shutter, and taken as absent).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_normalised() -> CliResult<()> {
        assert_eq!(
            normalise_server("http://127.0.0.1:8080")?.as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            normalise_server("https://example.com/shutter?x=1")?.as_str(),
            "https://example.com/shutter/"
        );
        assert!(normalise_server("ftp://example.com").is_err());
        assert!(normalise_server("not a url").is_err());
        Ok(())
    }

    fn api(base: &str) -> CliResult<Api> {
        let store = Store::new(Some(std::env::temp_dir()))?;
        let session = Session {
            server: normalise_server(base)?.to_string(),
            username: "u".into(),
            user_id: "u".into(),
            access_token: "secret-token".into(),
            refresh_token: "r".into(),
        };
        Api::new(normalise_server(base)?, store, Some(session))
    }

    #[test]
    fn paths_join_below_the_base() -> CliResult<()> {
        let api = api("http://h:1/prefix")?;
        assert_eq!(api.url("/v1/files")?.as_str(), "http://h:1/prefix/v1/files");
        assert_eq!(api.url("v1/tus/x")?.as_str(), "http://h:1/prefix/v1/tus/x");
        Ok(())
    }

    #[test]
    fn the_server_s_urls_are_moved_onto_the_base() -> CliResult<()> {
        let api = api("http://h:1/prefix")?;
        // Another origin (a wrong or unset public_url), or ours without the prefix.
        for url in [
            "http://other/v1/tus/x",
            "https://h:1/v1/tus/x",
            "http://h:1/v1/tus/x",
        ] {
            assert_eq!(
                api.url(url)?.as_str(),
                "http://h:1/prefix/v1/tus/x",
                "{url}"
            );
        }
        assert_eq!(
            api.url("http://0.0.0.0:8080/v1/files/x/content?expires=1&sig=abc")?
                .as_str(),
            "http://h:1/prefix/v1/files/x/content?expires=1&sig=abc"
        );
        // Already below the base, or not an API URL (a presigned bucket URL): as it is.
        assert_eq!(
            api.url("http://h:1/prefix/v1/tus/x")?.as_str(),
            "http://h:1/prefix/v1/tus/x"
        );
        let s3 = "https://bucket.s3.example.com/files/x?X-Amz-Signature=1";
        assert_eq!(api.url(s3)?.as_str(), s3);
        assert!(!api.is_ours(&api.url(s3)?));
        Ok(())
    }

    #[tokio::test]
    async fn the_token_never_goes_to_another_origin() -> CliResult<()> {
        let mut api = api("http://127.0.0.1:1")?;
        // Were it sent, this would be a connection error; it is refused before.
        for url in [
            "http://127.0.0.2:1/v2/x",
            "https://127.0.0.1:1/x",
            "http://127.0.0.1:2/x",
        ] {
            let url = Url::parse(url).map_err(|e| CliError::new("internal", e.to_string()))?;
            let err = api
                .send(|c, t| c.get(url.clone()).bearer_auth(t))
                .await
                .err()
                .map(|e| e.code);
            assert_eq!(err.as_deref(), Some("untrusted_url"), "{url}");
        }
        Ok(())
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
