//! The Administration API end to end against one real `arca` process (OPS-01, OPS-02, ADM-01 … ADM-04):
//! the manual's envelope and examples, long-running calls (poll, long-poll, finish, cancel), metadata,
//! errors that name their cause, user and archive administration, and persistence across a restart.
//!
//! Each test starts its own single node (with `ARCA_ENABLE_TEST_FUNCTIONS=1`, so `ArcaTestSleep` exists)
//! and runs many checks on it to keep the suite fast.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arca_tests::{ApiClient, Cluster};
use serde_json::{Value, json};

/// A password that satisfies the policy (ADM-02 example).
const GOOD_PASSWORD: &str = "Sommer2024!x";

/// `error.message` and `error.details` of an envelope, for matching.
fn error_text(env: &Value) -> String {
    format!(
        "{} | {}",
        env["error"]["message"].as_str().unwrap_or(""),
        env["error"]["details"].as_str().unwrap_or("")
    )
}

/// Asserts that `env` is a finished failure (never a fake success) and returns its error text.
fn assert_failed(env: &Value, what: &str) -> String {
    assert!(env["error"].is_object(), "{what}: expected an error envelope, got {env}");
    assert!(env["error"]["message"].is_string() && env["error"]["details"].is_string(), "{what}: {env}");
    assert_eq!(env["statusCode"], "failed", "{what}: {env}");
    assert!(env["token"].is_null(), "{what}: a failed call has no token: {env}");
    assert!(env["result"].is_null(), "{what}: a failed call has no result: {env}");
    error_text(env)
}

/// Invokes `function` and asserts that it fails with an error mentioning every one of `needles`.
async fn expect_error(
    api: &ApiClient,
    function: &str,
    args: &[(&str, &str)],
    needles: &[&str],
) -> Result<String> {
    let env = api.invoke(function, args).await?;
    let text = assert_failed(&env, function);
    for needle in needles {
        assert!(text.contains(needle), "{function} {args:?}: error should mention '{needle}': {text}");
    }
    Ok(text)
}

/// POSTs to `/api/get-status` and returns the envelope and how long the answer took.
async fn get_status(api: &ApiClient, token: &str, known: u64, timeout_ms: u64) -> Result<(Value, Duration)> {
    let started = Instant::now();
    let env = api
        .envelope(
            "/api/get-status",
            &[
                ("token", token),
                ("lastKnownStatusVersion", &known.to_string()),
                ("millisecondsTimeout", &timeout_ms.to_string()),
            ],
        )
        .await?;
    Ok((env, started.elapsed()))
}

/// The lines of a `logOutput` value; asserts that every line is CRLF-terminated.
fn log_lines(env: &Value) -> Vec<String> {
    match env["logOutput"].as_str() {
        None => {
            assert!(env["logOutput"].is_null(), "logOutput is a string or null: {env}");
            Vec::new()
        }
        Some(text) => {
            assert!(text.ends_with("\r\n"), "logOutput lines end with CRLF: {text:?}");
            let lines: Vec<String> = text.split_terminator("\r\n").map(str::to_string).collect();
            assert!(
                lines.iter().all(|l| !l.contains('\n') && !l.contains('\r')),
                "only CRLF separators: {text:?}"
            );
            lines
        }
    }
}

fn token_of(env: &Value) -> String {
    env["token"].as_str().unwrap_or_default().to_string()
}

fn version_of(env: &Value) -> u64 {
    env["statusVersion"].as_u64().unwrap_or_else(|| panic!("statusVersion is an integer: {env}"))
}

fn is_call_token(token: &str) -> bool {
    token.len() == 32 && token.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// Starts `ArcaTestSleep`, which must still run when `invoke` answers; returns (token, envelope).
async fn start_sleep(api: &ApiClient, milliseconds: u64, steps: u64) -> Result<(String, Value)> {
    let env = api
        .invoke(
            "ArcaTestSleep",
            &[("milliseconds", &milliseconds.to_string()), ("steps", &steps.to_string())],
        )
        .await?;
    assert_eq!(env["statusCode"], "running", "a call that needs longer than 1 s answers running: {env}");
    assert!(env["error"].is_null() && env["result"].is_null(), "{env}");
    let token = token_of(&env);
    assert!(is_call_token(&token), "token is 32 lower-case hex characters: {env}");
    let percent = env["percentProgress"].as_u64().context("percentProgress while running")?;
    assert!(percent <= 100, "{env}");
    Ok((token, env))
}

/// User names listed by `GetUsers`.
async fn user_names(api: &ApiClient) -> Result<Vec<String>> {
    let users = api.ok("GetUsers", &[]).await?;
    Ok(users
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["userName"].as_str().map(str::to_string))
        .collect())
}

/// Folder paths listed by `GetChildFolders` with the given arguments.
async fn folders(api: &ApiClient, args: &[(&str, &str)]) -> Result<Vec<String>> {
    let list = api.ok("GetChildFolders", args).await?;
    let Some(items) = list.as_array() else { bail!("GetChildFolders answers a list: {list}") };
    Ok(items
        .iter()
        .map(|f| f.as_str().map(str::to_string).unwrap_or_else(|| panic!("folder strings: {list}")))
        .collect())
}

/// `privilegesOnFolders` of a user as (folder, privileges) pairs.
fn folder_grants(info: &Value) -> Vec<(String, Vec<String>)> {
    info["privilegesOnFolders"]
        .as_array()
        .unwrap_or_else(|| panic!("privilegesOnFolders is a list: {info}"))
        .iter()
        .map(|g| {
            let folder =
                g["folder"].as_str().unwrap_or_else(|| panic!("folder is a string: {g}")).to_string();
            let privileges = g["privileges"]
                .as_array()
                .unwrap_or_else(|| panic!("privileges is a list: {g}"))
                .iter()
                .map(|p| p.as_str().unwrap_or_default().to_string())
                .collect();
            (folder, privileges)
        })
        .collect()
}

fn grant(folder: &str, privileges: &[&str]) -> (String, Vec<String>) {
    (folder.to_string(), privileges.iter().map(|p| p.to_string()).collect())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect()
}

/// A reqwest client that sends no credentials at all.
fn anonymous_http() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_info_answers_the_manuals_envelope_and_metadata_lists_every_function() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);

    // Manual 7.1 example 1: POST /api/invoke/GetServerInfo with Basic credentials and an empty body.
    let a = api.post_raw("/api/invoke/GetServerInfo", &[], &[]).await?;
    assert_eq!(a.status, 200, "{}", a.body);
    let header = |name: &str| a.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(
        header("cache-control"),
        "no-cache,private,no-store,must-revalidate,max-stale=0,post-check=0,pre-check=0"
    );
    assert_eq!(header("pragma"), "no-cache");
    assert!(!header("expires").is_empty(), "an Expires header: {:?}", a.headers);
    let keys = [
        "error",
        "token",
        "statusVersion",
        "statusCode",
        "percentProgress",
        "statusText",
        "result",
        "logOutput",
    ];
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| a.body.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("key {k} in body {}", a.body)))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "the eight keys in the manual's order: {}", a.body);
    let env = a.json();
    assert_eq!(env.as_object().map(|o| o.len()), Some(8), "exactly eight keys: {}", a.body);
    assert!(env["error"].is_null(), "{env}");
    assert!(env["token"].is_null(), "{env}");
    assert_eq!(env["statusCode"], "succeeded", "{env}");
    assert_eq!(env["statusVersion"], 2, "as in the manual's example: {env}");
    assert!(env["percentProgress"].is_null() && env["logOutput"].is_null(), "{env}");
    assert!(env["result"]["version"].as_str().is_some_and(|v| !v.is_empty()), "{env}");
    assert!(env["result"]["machineName"].as_str().is_some_and(|v| !v.is_empty()), "{env}");

    // Manual 7.1 example 2 (VerifyStore id=11): this node has no store 11, so an honest error naming it,
    // never a success (the long-running flow of VerifyStore itself is covered by archive_stores.rs).
    let a = api.post_raw("/api/invoke/VerifyStore", &[("id", "11")], &[]).await?;
    assert_eq!(a.status, 200, "{}", a.body);
    let text = assert_failed(&a.json(), "VerifyStore");
    assert!(text.contains("store '11' does not exist"), "{text}");

    // get-metadata: every function with its arguments.
    let meta = api.envelope("/api/get-metadata", &[]).await?;
    assert!(meta["error"].is_null() && meta["statusCode"] == "succeeded", "{meta}");
    let list = meta["result"].as_array().context("get-metadata result is a list")?;
    for f in list {
        let obj = f.as_object().unwrap_or_else(|| panic!("function object: {f}"));
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["args", "description", "name"], "{f}");
        assert!(f["name"].as_str().is_some_and(|n| !n.is_empty()), "{f}");
        assert!(f["description"].as_str().is_some_and(|d| !d.is_empty()), "{f}");
        for arg in f["args"].as_array().unwrap_or_else(|| panic!("args list: {f}")) {
            assert!(arg["name"].is_string(), "{f}");
            assert!(
                ["string", "number", "bool", "json"].contains(&arg["type"].as_str().unwrap_or("")),
                "{f}"
            );
            assert!(arg["nullable"].is_boolean(), "{f}");
        }
    }
    let names: Vec<&str> = list.iter().filter_map(|f| f["name"].as_str()).collect();
    // Arca's own functions say so at the start of their description (ArcaTestSleep, MoveStore, ...).
    let extension = |name: &str| {
        list.iter().any(|f| {
            f["name"] == name && f["description"].as_str().is_some_and(|d| d.starts_with("Arca extension"))
        })
    };
    let manual: Vec<&&str> = names.iter().filter(|n| !n.starts_with("Arca") && !extension(n)).collect();
    assert_eq!(manual.len(), 77, "the manual's 77 functions: {names:?}");
    for expected in [
        "AttachStore",
        "CreateUser",
        "GetServerInfo",
        "GetUserInfo",
        "GetWorkerResults",
        "MoveFolder",
        "SetUserPrivilegesOnFolder",
        "VerifyStore",
        "VerifyStores",
    ] {
        assert!(names.contains(&expected), "{expected} listed: {names:?}");
    }
    let find = |name: &str| list.iter().find(|f| f["name"] == name).cloned().unwrap_or(Value::Null);
    let worker = find("GetWorkerResults");
    let worker_args: Vec<&str> =
        worker["args"].as_array().into_iter().flatten().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(
        worker_args,
        ["fromIncluding", "toExcluding", "timeZoneID", "profileID", "userName"],
        "{worker}"
    );
    let create = find("CreateUser");
    assert_eq!(
        create["args"][0],
        json!({"name": "userName", "type": "string", "nullable": false}),
        "CreateUser args: {create}"
    );
    assert_eq!(
        create["args"][1],
        json!({"name": "privileges", "type": "string", "nullable": false}),
        "{create}"
    );
    let sleep = find("ArcaTestSleep");
    assert!(sleep.is_object(), "test functions are listed while enabled: {names:?}");
    assert!(sleep["description"].as_str().is_some_and(|d| d.starts_with("Arca extension")), "{sleep}");
    assert_eq!(
        sleep["args"][0],
        json!({"name": "milliseconds", "type": "number", "nullable": false}),
        "{sleep}"
    );
    assert_eq!(sleep["args"][1], json!({"name": "steps", "type": "number", "nullable": true}), "{sleep}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_running_calls_report_progress_long_poll_finish_and_cancel() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);

    // A quick function finishes within the invoke and never shows a token.
    let env = api.invoke("GetUsers", &[]).await?;
    assert_eq!(env["statusCode"], "succeeded", "{env}");
    assert!(env["token"].is_null() && env["error"].is_null(), "{env}");
    let listed = env["result"].as_array().into_iter().flatten().any(|u| u["userName"] == "admin");
    assert!(listed, "GetUsers lists admin: {env}");

    // Two steps of 2 s: invoke answers `running` after ~1 s, and nothing changes until ~2 s.
    let (token, first) = start_sleep(&api, 4000, 2).await?;
    let v1 = version_of(&first);
    assert!(log_lines(&first).is_empty(), "no step has finished yet: {first}");

    // Something newer than version 0 exists: answered at once, not after the 5 s timeout or the next step.
    let (now, took) = get_status(&api, &token, 0, 5000).await?;
    assert!(took < Duration::from_millis(700), "a newer status is answered at once, took {took:?}: {now}");
    assert_eq!(now["statusCode"], "running", "{now}");
    assert_eq!(token_of(&now), token, "{now}");
    assert_eq!(version_of(&now), v1, "{now}");

    // Nothing newer than the current version: the server waits for millisecondsTimeout and repeats it.
    let (same, took) = get_status(&api, &token, v1, 300).await?;
    assert!(
        took >= Duration::from_millis(250),
        "long-poll waits about millisecondsTimeout, took {took:?}: {same}"
    );
    assert_eq!(same["statusCode"], "running", "{same}");
    assert_eq!(version_of(&same), v1, "the same status is repeated: {same}");
    assert!(log_lines(&same).is_empty(), "no log lines since the known version: {same}");

    // Wait for the next change: step 1 has finished.
    let (next, _) = get_status(&api, &token, v1, 5000).await?;
    assert_eq!(next["statusCode"], "running", "{next}");
    assert!(version_of(&next) > v1, "{next}");
    assert_eq!(log_lines(&next), ["  step 1 of 2 done..."], "{next}");

    // Poll to the end.
    let mut known = version_of(&next);
    let finished = loop {
        let (env, _) = get_status(&api, &token, known, 5000).await?;
        assert!(version_of(&env) > known, "every answer of a wait is newer: {env}");
        known = version_of(&env);
        if env["statusCode"] != "running" {
            break env;
        }
    };
    assert_eq!(finished["statusCode"], "succeeded", "{finished}");
    assert!(finished["token"].is_null(), "the final status has no token: {finished}");
    assert!(finished["error"].is_null(), "{finished}");
    assert_eq!(finished["result"], json!({"steps": 2}), "{finished}");
    assert!(finished["percentProgress"].is_null(), "{finished}");

    // The finished status stays retrievable; since version 0 it carries every log line.
    let (again, took) = get_status(&api, &token, 0, 5000).await?;
    assert!(took < Duration::from_millis(700), "{again}");
    assert_eq!(again["statusCode"], "succeeded", "{again}");
    assert_eq!(version_of(&again), known, "{again}");
    assert_eq!(log_lines(&again), ["  step 1 of 2 done...", "  step 2 of 2 done..."], "{again}");

    // Eight steps of 500 ms: every answer is newer than the last and carries exactly the lines since then.
    let (token, first) = start_sleep(&api, 4000, 8).await?;
    let mut known = version_of(&first);
    let mut lines = log_lines(&first);
    let mut versions = vec![known];
    let last = loop {
        let (env, _) = get_status(&api, &token, known, 5000).await?;
        let v = version_of(&env);
        assert!(v > known, "statusVersion increases: {v} after {known}: {env}");
        known = v;
        versions.push(v);
        lines.extend(log_lines(&env));
        if env["statusCode"] != "running" {
            break env;
        }
        assert_eq!(token_of(&env), token, "a running call keeps its token: {env}");
    };
    let expected: Vec<String> = (1..=8).map(|i| format!("  step {i} of 8 done...")).collect();
    assert_eq!(lines, expected, "each log line exactly once, in order (versions {versions:?})");
    assert!(versions.len() >= 3, "several intermediate statuses: {versions:?}");
    assert_eq!(last["statusCode"], "succeeded", "{last}");
    assert!(last["token"].is_null(), "{last}");
    assert_eq!(last["result"], json!({"steps": 8}), "{last}");

    // Cancel: the call ends as `cancelled`, stops changing, and stays retrievable.
    let (token, running) = start_sleep(&api, 60_000, 60).await?;
    let cancelled = api.envelope("/api/cancel-async", &[("token", &token)]).await?;
    assert_eq!(cancelled["statusCode"], "cancelled", "{cancelled}");
    assert!(cancelled["error"].is_null(), "{cancelled}");
    assert!(cancelled["token"].is_null(), "a cancelled call is finished: {cancelled}");
    assert!(version_of(&cancelled) > version_of(&running), "{cancelled}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (after, _) = get_status(&api, &token, 0, 0).await?;
    assert_eq!(after["statusCode"], "cancelled", "get-status after cancel-async: {after}");
    assert!(after["token"].is_null(), "{after}");
    assert_eq!(version_of(&after), version_of(&cancelled), "the cancelled call no longer changes: {after}");

    // Unknown tokens and missing tokens are errors.
    let unknown = "0123456789abcdef0123456789abcdef";
    let (env, _) = get_status(&api, unknown, 0, 0).await?;
    let text = assert_failed(&env, "get-status with an unknown token");
    assert!(text.contains(unknown), "{text}");
    let env = api.envelope("/api/cancel-async", &[("token", unknown)]).await?;
    let text = assert_failed(&env, "cancel-async with an unknown token");
    assert!(text.contains(unknown), "{text}");
    let env = api.envelope("/api/get-status", &[]).await?;
    assert!(assert_failed(&env, "get-status without token").contains("'token'"), "{env}");
    let env = api.envelope("/api/get-status", &[("token", &token), ("millisecondsTimeout", "soon")]).await?;
    assert!(assert_failed(&env, "malformed timeout").contains("millisecondsTimeout"), "{env}");

    // Tokens belong to the administrator who started the call.
    api.ok(
        "CreateUser",
        &[("userName", "second admin"), ("privileges", "admin"), ("password", GOOD_PASSWORD)],
    )
    .await?;
    let other = api.with_login("second admin", GOOD_PASSWORD);
    let (env, _) = get_status(&other, &token, 0, 0).await?;
    assert_failed(&env, "another administrator's token");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_callers_get_errors_that_name_the_cause() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);

    // Function names are exact and case-sensitive.
    expect_error(&api, "GetServerInformation", &[], &["GetServerInformation"]).await?;
    expect_error(&api, "getserverinfo", &[], &["getserverinfo"]).await?;

    // Arguments: missing, unknown, malformed, repeated, wrong value.
    expect_error(&api, "CreateUser", &[("userName", "erwin")], &["'privileges'"]).await?;
    expect_error(
        &api,
        "CreateUser",
        &[("username", "erwin"), ("privileges", "login")],
        &["'username'", "'userName'"],
    )
    .await?;
    expect_error(&api, "GetChildFolders", &[("maxLevels", "two")], &["'maxLevels'", "two"]).await?;
    expect_error(&api, "GetUserInfo", &[("userName", "a"), ("userName", "b")], &["'userName'"]).await?;
    expect_error(
        &api,
        "CreateUser",
        &[("userName", "erwin"), ("privileges", "superuser")],
        &["privileges", "superuser"],
    )
    .await?;
    expect_error(
        &api,
        "CreateUser",
        &[("userName", "erwin"), ("privileges", "admin,login")],
        &["privileges"],
    )
    .await?;
    expect_error(
        &api,
        "SetUserPrivilegesOnFolder",
        &[("userName", "admin"), ("folder", "admin"), ("privileges", "read,everything")],
        &["privileges", "everything"],
    )
    .await?;
    expect_error(
        &api,
        "GetWorkerResults",
        &[
            ("fromIncluding", "2018-01-01T00:00:00"),
            ("toExcluding", "2019-01-01T00:00:00"),
            ("timeZoneId", "$Local"),
        ],
        &["'timeZoneId'", "timeZoneID"],
    )
    .await?;
    expect_error(
        &api,
        "GetWorkerResults",
        &[
            ("fromIncluding", "2018-01-01T00:00:00"),
            ("toExcluding", "2019-01-01T00:00:00"),
            ("timeZoneID", "$Local"),
        ],
        &["not available yet"],
    )
    .await?;
    expect_error(&api, "VerifyStore", &[("id", "eleven")], &["'id'", "eleven"]).await?;
    expect_error(&api, "GetUserInfo", &[("userName", "nobody")], &["nobody"]).await?;
    assert!(!user_names(&api).await?.contains(&"erwin".to_string()), "no refused call created the user");

    // Password policy (ADM-02): every violated rule by its code; nothing is created.
    for (password, code) in [
        ("abcdefghij", "tooFewCharacterClasses"),
        ("Myarca-2024", "containsProductName"),
        ("Short1!", "tooShort"),
    ] {
        expect_error(
            &api,
            "CreateUser",
            &[("userName", "pia"), ("privileges", "login"), ("password", password)],
            &["password", code],
        )
        .await?;
    }
    expect_error(&api, "GetUserInfo", &[("userName", "pia")], &["pia"]).await?;

    // Only POST.
    let a = api.get("/api/invoke/GetServerInfo").await?;
    assert_eq!(a.status, 405, "GET on invoke: {}", a.body);
    let a = api.get("/api/get-status").await?;
    assert_eq!(a.status, 405, "GET on get-status: {}", a.body);

    // Wrong and missing credentials: 401 with a Basic challenge.
    let a = api.with_login("admin", "wrong").post_raw("/api/invoke/GetServerInfo", &[], &[]).await?;
    assert_eq!(a.status, 401, "{}", a.body);
    let challenge = a.headers.get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(challenge, "Basic realm=\"Arca\"", "{:?}", a.headers);
    let a = api.with_login("ghost", GOOD_PASSWORD).post_raw("/api/invoke/GetServerInfo", &[], &[]).await?;
    assert_eq!(a.status, 401, "unknown user: {}", a.body);
    let resp = anonymous_http()?.post(format!("{}/api/invoke/GetServerInfo", api.base)).send().await?;
    assert_eq!(resp.status().as_u16(), 401, "no credentials");
    let challenge =
        resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert_eq!(challenge, "Basic realm=\"Arca\"");

    // A valid user without `admin`: HTTP 200 with an error envelope, on every API route.
    api.ok("CreateUser", &[("userName", "nora"), ("privileges", "login"), ("password", GOOD_PASSWORD)])
        .await?;
    let nora = api.with_login("nora", GOOD_PASSWORD);
    let env = nora.invoke("GetServerInfo", &[]).await?;
    let text = assert_failed(&env, "non-admin invoke");
    assert!(text.contains("not an administrator") && text.contains("admin"), "{text}");
    let env = nora.envelope("/api/get-metadata", &[]).await?;
    assert!(assert_failed(&env, "non-admin get-metadata").contains("not an administrator"), "{env}");
    let env = nora.envelope("/api/get-status", &[("token", "0123456789abcdef0123456789abcdef")]).await?;
    assert!(assert_failed(&env, "non-admin get-status").contains("not an administrator"), "{env}");
    let env = nora.invoke("CreateUser", &[("userName", "sneaky"), ("privileges", "admin")]).await?;
    assert_failed(&env, "non-admin CreateUser");
    assert!(!user_names(&api).await?.contains(&"sneaky".to_string()), "a non-admin created nothing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_administration_keeps_archives_grants_and_names_as_the_manual_describes() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);

    // CreateUser gives the GetUserInfo shape with read,write on the own archive.
    api.ok("CreateUser", &[("userName", "alice"), ("privileges", "login"), ("fullName", "Alice Adams")])
        .await?;
    api.ok("CreateUser", &[("userName", "bob"), ("privileges", "login")]).await?;
    let info = api.ok("GetUserInfo", &[("userName", "alice")]).await?;
    let mut keys: Vec<&str> =
        info.as_object().context("GetUserInfo is an object")?.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected_keys = vec![
        "userName",
        "fullName",
        "distinguishedName",
        "authentication",
        "emailAddresses",
        "pop3UserNames",
        "privileges",
        "privilegesOnFolders",
    ];
    expected_keys.sort_unstable();
    assert_eq!(keys, expected_keys, "{info}");
    assert_eq!(info["userName"], "alice");
    assert_eq!(info["fullName"], "Alice Adams");
    assert!(info["distinguishedName"].is_null(), "{info}");
    assert_eq!(info["authentication"], "integrated");
    assert_eq!(info["emailAddresses"], json!([]));
    assert_eq!(info["pop3UserNames"], json!([]));
    assert_eq!(info["privileges"], json!(["login"]));
    assert_eq!(folder_grants(&info), [grant("alice", &["read", "write"])], "{info}");
    assert!(user_names(&api).await?.contains(&"alice".to_string()));

    // E-mail addresses: the first is primary, the order given is kept.
    api.ok("SetUserEmailAddresses", &[("userName", "alice"), ("emailAddresses", "a@x.org, b@x.org")]).await?;
    let info = api.ok("GetUserInfo", &[("userName", "alice")]).await?;
    assert_eq!(info["emailAddresses"], json!(["a@x.org", "b@x.org"]), "{info}");
    api.ok("SetUserEmailAddresses", &[("userName", "alice"), ("emailAddresses", "z@x.org,a@x.org")]).await?;
    let info = api.ok("GetUserInfo", &[("userName", "alice")]).await?;
    assert_eq!(info["emailAddresses"], json!(["z@x.org", "a@x.org"]), "not sorted: {info}");

    // Full name, privileges.
    api.ok("SetUserFullName", &[("userName", "alice"), ("fullName", "Alice B. Adams")]).await?;
    api.ok("SetUserPrivileges", &[("userName", "alice"), ("privileges", "login, archive")]).await?;
    let info = api.ok("GetUserInfo", &[("userName", "alice")]).await?;
    assert_eq!(info["fullName"], "Alice B. Adams", "{info}");
    let mut privileges = strings(&info["privileges"]);
    privileges.sort();
    assert_eq!(privileges, ["archive", "login"], "{info}");
    api.ok("SetUserFullName", &[("userName", "alice")]).await?;
    let info = api.ok("GetUserInfo", &[("userName", "alice")]).await?;
    assert!(info["fullName"].is_null(), "omitted fullName removes it: {info}");

    // Folder grants on another user's archive: set with blanks, then `none` removes them.
    api.ok(
        "SetUserPrivilegesOnFolder",
        &[("userName", "alice"), ("folder", "bob"), ("privileges", "read, write")],
    )
    .await?;
    let info = api.ok("GetUserInfo", &[("userName", "alice")]).await?;
    assert_eq!(
        folder_grants(&info),
        [grant("alice", &["read", "write"]), grant("bob", &["read", "write"])],
        "{info}"
    );
    api.ok("SetUserPrivilegesOnFolder", &[("userName", "alice"), ("folder", "bob"), ("privileges", "none")])
        .await?;
    let info = api.ok("GetUserInfo", &[("userName", "alice")]).await?;
    assert_eq!(folder_grants(&info), [grant("alice", &["read", "write"])], "{info}");
    expect_error(
        &api,
        "SetUserPrivilegesOnFolder",
        &[("userName", "alice"), ("folder", "bob/Inbox"), ("privileges", "read")],
        &["folder"],
    )
    .await?;
    expect_error(
        &api,
        "SetUserPrivilegesOnFolder",
        &[("userName", "alice"), ("folder", "nowhere"), ("privileges", "read")],
        &["nowhere"],
    )
    .await?;

    // RenameUser: the new name works, the old one does not, the archive keeps its name.
    api.ok("RenameUser", &[("oldUserName", "alice"), ("newUserName", "alicia")]).await?;
    let info = api.ok("GetUserInfo", &[("userName", "alicia")]).await?;
    assert_eq!(info["userName"], "alicia", "{info}");
    assert_eq!(folder_grants(&info), [grant("alice", &["read", "write"])], "grants stay attached: {info}");
    expect_error(&api, "GetUserInfo", &[("userName", "alice")], &["alice"]).await?;
    let top = folders(&api, &[("maxLevels", "1")]).await?;
    assert!(top.contains(&"alice".to_string()) && !top.contains(&"alicia".to_string()), "{top:?}");

    // MoveFolder renames the top-level folder (the archive); grants follow it.
    api.ok("MoveFolder", &[("fromFolder", "alice"), ("toFolder", "alicia")]).await?;
    let top = folders(&api, &[]).await?;
    assert!(top.contains(&"alicia".to_string()) && !top.contains(&"alice".to_string()), "{top:?}");
    let info = api.ok("GetUserInfo", &[("userName", "alicia")]).await?;
    assert_eq!(folder_grants(&info), [grant("alicia", &["read", "write"])], "{info}");
    expect_error(
        &api,
        "MoveFolder",
        &[("fromFolder", "alicia"), ("toFolder", "bob")],
        &["bob", "already exists"],
    )
    .await?;

    // GetChildFolders: archives at level 1, nothing at level 0, no subfolders below an empty archive.
    let all = folders(&api, &[]).await?;
    let mut expected = vec!["admin".to_string(), "alicia".to_string(), "bob".to_string()];
    expected.sort();
    assert_eq!(all, expected, "one archive per user");
    assert_eq!(folders(&api, &[("maxLevels", "1")]).await?, expected);
    assert_eq!(folders(&api, &[("maxLevels", "0")]).await?, Vec::<String>::new());
    assert_eq!(folders(&api, &[("folder", "bob")]).await?, Vec::<String>::new());
    expect_error(&api, "GetChildFolders", &[("folder", "nowhere")], &["nowhere"]).await?;
    expect_error(&api, "GetChildFolders", &[("maxLevels", "-1")], &["maxLevels"]).await?;

    // DeleteUser: the user goes, the archive stays (orphaned); creating the name again re-links it.
    api.ok("SetUserPrivilegesOnFolder", &[("userName", "bob"), ("folder", "alicia"), ("privileges", "read")])
        .await?;
    api.ok("DeleteUser", &[("userName", "bob")]).await?;
    assert!(!user_names(&api).await?.contains(&"bob".to_string()), "bob is gone");
    expect_error(&api, "GetUserInfo", &[("userName", "bob")], &["bob"]).await?;
    assert_eq!(folders(&api, &[]).await?, expected, "the archive 'bob' stays");
    api.ok("CreateUser", &[("userName", "bob"), ("privileges", "login")]).await?;
    let info = api.ok("GetUserInfo", &[("userName", "bob")]).await?;
    assert_eq!(
        folder_grants(&info),
        [grant("bob", &["read", "write"])],
        "re-linked, old grants gone: {info}"
    );
    assert_eq!(folders(&api, &[]).await?, expected, "no second archive 'bob'");
    expect_error(&api, "DeleteUser", &[("userName", "admin")], &["admin"]).await?;

    // SetUserPassword: the new password logs in (non-admin → envelope), the old one is refused (401).
    api.ok("CreateUser", &[("userName", "dora"), ("privileges", "login"), ("password", GOOD_PASSWORD)])
        .await?;
    let new_password = "Winter2025#y";
    expect_error(
        &api,
        "SetUserPassword",
        &[("userName", "dora"), ("password", "dora-Pass-123")],
        &["containsUserName"],
    )
    .await?;
    api.ok("SetUserPassword", &[("userName", "dora"), ("password", new_password)]).await?;
    let env = api.with_login("dora", new_password).invoke("GetServerInfo", &[]).await?;
    let text = assert_failed(&env, "dora with the new password");
    assert!(text.contains("not an administrator"), "the new password is accepted: {text}");
    let a = api.with_login("dora", GOOD_PASSWORD).post_raw("/api/invoke/GetServerInfo", &[], &[]).await?;
    assert_eq!(a.status, 401, "the old password is refused: {}", a.body);

    // Idempotency-Key: a retried CreateUser applies once and answers the same success.
    let args = [("userName", "retry-user"), ("privileges", "login")];
    let key = [("Idempotency-Key", "admin-api-test-retry-1")];
    let first = api.post_raw("/api/invoke/CreateUser", &args, &key).await?;
    let second = api.post_raw("/api/invoke/CreateUser", &args, &key).await?;
    assert_eq!(first.json()["statusCode"], "succeeded", "{}", first.body);
    assert_eq!(
        second.json()["statusCode"],
        "succeeded",
        "the retry answers the first outcome: {}",
        second.body
    );
    let names = user_names(&api).await?;
    assert_eq!(names.iter().filter(|n| *n == "retry-user").count(), 1, "{names:?}");
    expect_error(&api, "CreateUser", &args, &["retry-user", "already exists"]).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_grants_and_folders_survive_a_restart() -> Result<()> {
    let mut cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    api.ok(
        "CreateUser",
        &[("userName", "carl"), ("privileges", "login, export"), ("password", GOOD_PASSWORD)],
    )
    .await?;
    api.ok("CreateUser", &[("userName", "dina"), ("privileges", "none"), ("fullName", "Dina D.")]).await?;
    api.ok("SetUserEmailAddresses", &[("userName", "carl"), ("emailAddresses", "carl@x.org, c@x.org")])
        .await?;
    api.ok(
        "SetUserPrivilegesOnFolder",
        &[("userName", "carl"), ("folder", "dina"), ("privileges", "read,delete")],
    )
    .await?;
    api.ok("MoveFolder", &[("fromFolder", "carl"), ("toFolder", "carl-archive")]).await?;

    let snapshot = |api: ApiClient| async move {
        let mut out = Vec::new();
        for name in ["carl", "dina", "admin"] {
            out.push(api.ok("GetUserInfo", &[("userName", name)]).await?);
        }
        out.push(api.ok("GetUsers", &[]).await?);
        out.push(api.ok("GetChildFolders", &[]).await?);
        Ok::<Vec<Value>, anyhow::Error>(out)
    };
    let before = snapshot(api.clone()).await?;
    assert_eq!(
        folder_grants(&before[0]),
        [grant("carl-archive", &["read", "write"]), grant("dina", &["read", "delete"])],
        "{}",
        before[0]
    );
    assert_eq!(before[4], json!(["admin", "carl-archive", "dina"]), "{}", before[4]);

    cluster.stop(0).await?;
    cluster.restart(0).await?;
    let api = cluster.api(0);
    let after = snapshot(api.clone()).await?;
    assert_eq!(after, before, "the same answers after a restart");
    let env = api.with_login("carl", GOOD_PASSWORD).invoke("GetServerInfo", &[]).await?;
    assert!(
        assert_failed(&env, "carl after restart").contains("not an administrator"),
        "password kept: {env}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_reused_with_other_arguments_is_refused_naming_it() -> Result<()> {
    let cluster = Cluster::start(1, &[]).await?;
    let api = cluster.api(0);
    api.ok("CreateUser", &[("userName", "rota"), ("privileges", "admin"), ("password", GOOD_PASSWORD)])
        .await?;
    let key = [("Idempotency-Key", "rotation-1")];
    let first_password = "Wechsel-Eins-2024!";
    let second_password = "Wechsel-Zwei-2024!";
    let set = |password: &'static str| {
        let api = api.clone();
        async move {
            api.post_raw("/api/invoke/SetUserPassword", &[("userName", "rota"), ("password", password)], &key)
                .await
        }
    };
    assert_eq!(set(first_password).await?.json()["statusCode"], "succeeded");
    let retry = set(first_password).await?;
    assert_eq!(retry.json()["statusCode"], "succeeded", "a retry is the same request: {}", retry.body);
    let reused = set(second_password).await?;
    assert_eq!(reused.json()["statusCode"], "failed", "{}", reused.body);
    assert!(reused.json()["error"].to_string().contains("Idempotency-Key"), "{}", reused.body);
    let old = api.with_login("rota", first_password).invoke("GetServerInfo", &[]).await?;
    assert_eq!(old["statusCode"], "succeeded", "the first rotation stands: {old}");
    let new = api.with_login("rota", second_password).post_raw("/api/invoke/GetServerInfo", &[], &[]).await?;
    assert_eq!(new.status, 401, "the refused one did not apply: {}", new.body);
    Ok(())
}
