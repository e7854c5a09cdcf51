//! The `shutter` binary (SPEC 5): configuration errors, `migrate`, `check`, `admin`, and `serve`
//! with its signing secret and graceful shutdown on SIGTERM.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn all_output(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts exit code 2 and an error naming every one of `words` (case-insensitively).
fn assert_config_error(out: &Output, words: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "invalid configuration exits with 2; got {:?}\n{}",
        out.status,
        all_output(out)
    );
    let text = stderr(out).to_lowercase();
    for word in words {
        assert!(text.contains(word), "stderr names {word}: {}", stderr(out));
    }
}

#[tokio::test]
async fn check_exits_0_on_a_good_configuration() {
    let dir = crate::backend::data_dir().await;
    let out = run_shutter(dir.path(), &["check"], &[]).await;
    assert_success(&out, "shutter check");

    let file = dir.path().join("good.toml");
    std::fs::write(
        &file,
        "data_dir = \"./data\"\n\n[server]\nlisten = \"127.0.0.1:9999\"\n\n[auth]\naccess_token_ttl = \"10m\"\n\n[rate_limits]\nlogin_per_minute = 5\n",
    )
    .unwrap();
    let out = run_shutter(
        dir.path(),
        &["--config", file.to_str().unwrap(), "check"],
        &[],
    )
    .await;
    assert_success(&out, "shutter --config good.toml check");
}

#[tokio::test]
async fn one_tier_key_can_be_set_alone() {
    // SPEC 5 names `SHUTTER_TIERS__BASIC__STORAGE_QUOTA` as the example of the env form: one
    // key of a tier is set, the others keep their defaults.
    let dir = crate::backend::data_dir().await;
    let out = run_shutter(
        dir.path(),
        &["check"],
        &[("SHUTTER_TIERS__BASIC__STORAGE_QUOTA", "5GiB")],
    )
    .await;
    assert_success(
        &out,
        "SHUTTER_TIERS__BASIC__STORAGE_QUOTA=5GiB shutter check",
    );

    let file = dir.path().join("tiers.toml");
    std::fs::write(&file, "[tiers.premium]\nposts_per_minute = 100\n").unwrap();
    let out = run_shutter(
        dir.path(),
        &["--config", file.to_str().unwrap(), "check"],
        &[],
    )
    .await;
    assert_success(&out, "shutter --config tiers.toml check");
}

#[tokio::test]
async fn an_invalid_listen_address_exits_2_naming_the_key() {
    let dir = crate::backend::data_dir().await;
    let env = [("SHUTTER_SERVER__LISTEN", "nowhere")];
    let out = run_shutter(dir.path(), &["check"], &env).await;
    assert_config_error(&out, &["server", "listen"]);
    let out = run_shutter(dir.path(), &["serve"], &env).await;
    assert_config_error(&out, &["server", "listen"]);
}

/// `jobs.workers = 0` makes `serve` an API-only node; a worker process without workers is a
/// mistake, said as one.
#[tokio::test]
async fn a_worker_process_with_no_workers_exits_2_naming_the_key() {
    let dir = crate::backend::data_dir().await;
    let out = run_shutter(dir.path(), &["worker"], &[("SHUTTER_JOBS__WORKERS", "0")]).await;
    assert_config_error(&out, &["jobs.workers", "shutter worker"]);
}

#[tokio::test]
async fn an_unknown_key_in_a_config_section_exits_2_naming_it() {
    let dir = crate::backend::data_dir().await;
    let file = dir.path().join("typo.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\nlistne = \"oops\"\n",
    )
    .unwrap();
    let out = run_shutter(
        dir.path(),
        &["--config", file.to_str().unwrap(), "check"],
        &[],
    )
    .await;
    assert_config_error(&out, &["listne"]);
}

#[tokio::test]
async fn a_shutter_toml_in_the_working_directory_is_read_by_default() {
    let dir = crate::backend::data_dir().await;
    std::fs::write(
        dir.path().join("shutter.toml"),
        "[rate_limits]\nper_ip_per_minute = 0\n",
    )
    .unwrap();
    let out = run_shutter(dir.path(), &["check"], &[]).await;
    assert_config_error(&out, &["per_ip_per_minute"]);
}

#[tokio::test]
async fn a_size_that_does_not_parse_exits_2_naming_the_key() {
    let dir = crate::backend::data_dir().await;
    let out = run_shutter(
        dir.path(),
        &["check"],
        &[("SHUTTER_TIERS__BASIC__STORAGE_QUOTA", "lots")],
    )
    .await;
    assert_config_error(&out, &["storage_quota"]);
    let out = run_shutter(
        dir.path(),
        &["check"],
        &[("SHUTTER_AUTH__ACCESS_TOKEN_TTL", "forever")],
    )
    .await;
    assert_config_error(&out, &["access_token_ttl"]);
}

#[tokio::test]
async fn migrate_prepares_a_fresh_data_dir_and_is_repeatable() {
    let dir = crate::backend::data_dir().await;
    let data = dir.path().join("fresh");
    std::fs::create_dir(&data).unwrap();
    let out = run_shutter(&data, &["migrate"], &[]).await;
    assert_success(&out, "shutter migrate");
    assert_eq!(
        data.join("shutter.db").exists(),
        !crate::backend::postgres_requested(),
        "the SQLite database is in the data dir, unless the database is PostgreSQL"
    );
    let out = run_shutter(&data, &["migrate"], &[]).await;
    assert_success(&out, "shutter migrate, a second time");
}

#[tokio::test]
async fn admin_commands_refuse_unknown_users_and_values() {
    let dir = crate::backend::data_dir().await;
    let out = run_shutter(dir.path(), &["migrate"], &[]).await;
    assert_success(&out, "shutter migrate");

    for args in [
        ["admin", "set-tier", "nobody", "premium"],
        ["admin", "set-role", "nobody", "admin"],
    ] {
        let out = run_shutter(dir.path(), &args, &[]).await;
        assert!(!out.status.success(), "{args:?} must fail");
        let text = all_output(&out).to_lowercase();
        assert!(
            text.contains("nobody") || text.contains("not found") || text.contains("no such user"),
            "a clear message: {text}"
        );
    }
}

#[tokio::test]
async fn admin_commands_refuse_unknown_tiers_and_roles() {
    let app = spawn_app().await;
    app.register("someone").await;
    for args in [
        ["admin", "set-tier", "someone", "gold"],
        ["admin", "set-role", "someone", "root"],
    ] {
        let out = run_shutter(app.data_dir.path(), &args, &[]).await;
        assert!(
            !out.status.success(),
            "{args:?} must fail:\n{}",
            all_output(&out)
        );
    }
    let (_, token, _) =
        session_parts(expect_status(app.login("someone", PASSWORD).await, StatusCode::OK).await);
    assert_eq!(app.me(&token).await["tier"], "basic");
}

#[tokio::test]
async fn an_admin_set_while_the_server_is_stopped_is_admin_after_the_start() {
    let dir = crate::backend::data_dir().await;
    let data = dir.path().to_path_buf();
    let first = start(test_config(&data), tempfile::tempdir().unwrap().into()).await;
    let (_, _, _) = first.register("boss").await;
    let (worker, _, _) = first.register("worker").await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let out = run_shutter(&data, &["admin", "set-role", "boss", "admin"], &[]).await;
    assert_success(&out, "shutter admin set-role");
    let out = run_shutter(&data, &["admin", "set-tier", "worker", "premium"], &[]).await;
    assert_success(&out, "shutter admin set-tier");

    let second = start(test_config(&data), tempfile::tempdir().unwrap().into()).await;
    let (_, boss_token, _) =
        session_parts(expect_status(second.login("boss", PASSWORD).await, StatusCode::OK).await);
    let (_, worker_token, _) =
        session_parts(expect_status(second.login("worker", PASSWORD).await, StatusCode::OK).await);
    let limits = expect_status(
        second.get("/v1/limits", Some(&worker_token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(limits["tier"], "premium");
    let resp = second
        .patch_json(
            &format!("/v1/admin/users/{}", id_of(&worker)),
            Some(&boss_token),
            &json!({"tier": "basic"}),
        )
        .await;
    assert_eq!(expect_status(resp, StatusCode::OK).await["tier"], "basic");
}

/// A `shutter serve` child process on a known port, its output going to files.
struct Served {
    child: tokio::process::Child,
    base: String,
    log_dir: tempfile::TempDir,
}

impl Served {
    async fn start(data: &Path, port: u16, envs: &[(&str, &str)]) -> Served {
        let log_dir = tempfile::tempdir().unwrap();
        let listen = format!("127.0.0.1:{port}");
        let mut all_envs: Vec<(&str, &str)> = vec![
            ("SHUTTER_SERVER__LISTEN", listen.as_str()),
            ("SHUTTER_RATE_LIMITS__ENABLED", "false"),
        ];
        all_envs.extend_from_slice(envs);
        let mut cmd = shutter_command(data, &all_envs);
        cmd.arg("serve")
            .stdout(Stdio::from(
                std::fs::File::create(log_dir.path().join("stdout")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(log_dir.path().join("stderr")).unwrap(),
            ));
        let child = cmd.spawn().expect("shutter serve starts");
        let mut served = Served {
            child,
            base: format!("http://{listen}"),
            log_dir,
        };
        let client = http_client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = served.child.try_wait().unwrap() {
                panic!(
                    "shutter serve exited early with {status}\n{}",
                    served.logs()
                );
            }
            if let Ok(resp) = client.get(format!("{}/healthz", served.base)).send().await {
                if resp.status() == StatusCode::OK {
                    return served;
                }
            }
            assert!(
                Instant::now() < deadline,
                "shutter serve did not become healthy within 30 s\n{}",
                served.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        let read = |name: &str| {
            std::fs::read_to_string(self.log_dir.path().join(name)).unwrap_or_default()
        };
        format!("stdout:\n{}\nstderr:\n{}", read("stdout"), read("stderr"))
    }

    /// Sends SIGTERM and returns the exit code and how long the exit took.
    async fn terminate(mut self) -> (Option<i32>, Duration) {
        let pid = self.child.id().expect("still running");
        let started = Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => (status.unwrap().code(), started.elapsed()),
            Err(_) => {
                let logs = self.logs();
                let _ = self.child.kill().await;
                panic!("shutter serve did not exit within 10 s of SIGTERM\n{logs}");
            }
        }
    }
}

#[tokio::test]
async fn serve_exits_0_on_sigterm_and_keeps_its_secret_across_restarts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = crate::backend::data_dir().await;
    let data = dir.path();
    let port = free_port();
    let envs = [("SHUTTER_MEDIA__MAX_PIXELS", "1234")];

    let served = Served::start(data, port, &envs).await;
    let client = http_client();
    let resp = client
        .post(format!("{}/v1/auth/register", served.base))
        .json(&json!({"username": "daemon", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let (user, access, _) = session_parts(expect_status(resp, StatusCode::CREATED).await);
    assert_eq!(
        jwt_claims(&access)["iss"],
        served.base,
        "the issuer is the public URL"
    );
    // The environment configured the server.
    let limits = client
        .get(format!("{}/v1/limits", served.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let limits = expect_status(limits, StatusCode::OK).await;
    assert_eq!(limits["limits"]["max_pixels"], 1234);

    let key_path = data.join("secrets").join("jwt.key");
    let meta = std::fs::metadata(&key_path).expect("the secret is created on first start");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let key = std::fs::read(&key_path).unwrap();
    assert_eq!(key.len(), 64);

    let logs = served.logs();
    let (code, took) = served.terminate().await;
    assert_eq!(code, Some(0), "a graceful exit after SIGTERM\n{logs}");
    assert!(took < Duration::from_secs(5), "exited in {took:?}");
    // It stopped accepting.
    assert!(client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err());

    // Started again: the same secret, so the token issued before still works.
    let served = Served::start(data, port, &envs).await;
    assert_eq!(
        std::fs::read(&key_path).unwrap(),
        key,
        "the secret is reused"
    );
    let me = client
        .get(format!("{}/v1/users/me", served.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(expect_status(me, StatusCode::OK).await["id"], user["id"]);
    let (code, _) = served.terminate().await;
    assert_eq!(code, Some(0));
}

/// The embedded database serves one node: a second `shutter serve` on the same SQLite file
/// is refused at once with the reason (exit 1), a `shutter worker` beside the first is not,
/// and once the first is gone, a new `serve` starts.
#[tokio::test]
async fn a_second_serve_on_one_sqlite_database_is_refused() {
    use crate::upload_helpers::ChildServer;
    let dir = crate::backend::sqlite_data_dir().await;
    let mut first = ChildServer::start(dir.path(), free_port(), &[]).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let out = run_shutter(
        dir.path(),
        &["serve"],
        &[("SHUTTER_SERVER__LISTEN", listen.as_str())],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let said = stderr(&out);
    assert!(
        said.contains("another `shutter serve` is running on the SQLite database"),
        "{said}"
    );
    let worker = ChildServer::worker(dir.path(), &[]).await;
    assert!(
        first.child.try_wait().expect("first").is_none(),
        "the first still runs"
    );
    drop(worker);

    first.kill9().await;
    let mut second = ChildServer::start(dir.path(), free_port(), &[]).await;
    second.kill9().await;
}
