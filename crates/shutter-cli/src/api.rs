//! The HTTP side: the server's base URL, one `reqwest` client, and the session. Every
//! authenticated call goes through [`Api::send`], which refreshes the access token once when
//! the server says it expired (refresh tokens rotate: the new pair is stored at once).

use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use crate::error::{CliError, CliResult};
use crate::store::{Session, Store};

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

    /// An API path (`v1/files`, with or without a leading `/`) or an absolute URL the server
    /// handed out, resolved against the server's base.
    pub fn url(&self, path: &str) -> CliResult<Url> {
        let relative = if path.starts_with("http://") || path.starts_with("https://") {
            path
        } else {
            path.trim_start_matches('/')
        };
        self.base
            .join(relative)
            .map_err(|e| CliError::new("internal", format!("bad URL {path:?}: {e}")))
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

    /// Stores the session of a register, login or refresh answer.
    pub fn adopt(&mut self, auth: &AuthResponse) -> CliResult<Session> {
        let session = Session {
            server: self.base.to_string(),
            username: auth.user["username"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            user_id: auth.user["id"].as_str().unwrap_or_default().to_owned(),
            access_token: auth.access_token.clone(),
            refresh_token: auth.refresh_token.clone(),
        };
        self.store.save_session(&session)?;
        self.session = Some(session.clone());
        Ok(session)
    }

    /// Forgets the session here (not on the server).
    pub fn drop_session(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// An unauthenticated JSON request; its answer checked and parsed.
    pub async fn anon_json<T: DeserializeOwned>(&self, request: RequestBuilder) -> CliResult<T> {
        let response = request.timeout(REQUEST_TIMEOUT).send().await?;
        json_body(response).await
    }

    /// Sends an authenticated request built by `build` (given the client and the access
    /// token). A 401 is answered by one refresh and one more try; any other status is the
    /// caller's to check. `build` may run twice, so it must build the whole request.
    pub async fn send<F>(&mut self, build: F) -> CliResult<Response>
    where
        F: Fn(&Client, &str) -> RequestBuilder,
    {
        let token = self.session()?.access_token.clone();
        let response = build(&self.http, &token).send().await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let err = error_of(response).await;
        if !refreshable(&err) {
            return Err(err);
        }
        self.refresh().await?;
        let token = self.session()?.access_token.clone();
        let response = build(&self.http, &token).send().await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(error_of(response).await);
        }
        Ok(response)
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

    /// Trades the refresh token for a new pair and stores it. Another process of this client
    /// may have done so already (the stored pair is then newer than ours): that pair is taken
    /// instead, as presenting a rotated token would end the session everywhere.
    pub async fn refresh(&mut self) -> CliResult<()> {
        let current = self.session()?.clone();
        if let Some(stored) = self.store.load_session()? {
            if stored.server == current.server
                && stored.user_id == current.user_id
                && stored.refresh_token != current.refresh_token
            {
                self.session = Some(stored);
                return Ok(());
            }
        }
        let url = self.url("v1/auth/refresh")?;
        let response = self
            .http
            .post(url)
            .json(&json!({ "refresh_token": current.refresh_token }))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await?;
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
        self.adopt(&auth)?;
        Ok(())
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

/// The error an answer stands for (its problem+json, or its status).
pub async fn error_of(response: Response) -> CliError {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    CliError::from_response(status, &body)
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

    #[test]
    fn paths_join_below_the_base() -> CliResult<()> {
        let store = Store::new(Some(std::env::temp_dir()))?;
        let api = Api::new(normalise_server("http://h:1/prefix")?, store, None)?;
        assert_eq!(api.url("/v1/files")?.as_str(), "http://h:1/prefix/v1/files");
        assert_eq!(api.url("v1/tus/x")?.as_str(), "http://h:1/prefix/v1/tus/x");
        assert_eq!(
            api.url("http://other/v1/tus/x")?.as_str(),
            "http://other/v1/tus/x"
        );
        Ok(())
    }
}
