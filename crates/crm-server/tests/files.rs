//! Files as the app uses them: attach a file to a lead (`startAttachmentUpload`, then a PUT to
//! the signed URL), list the lead's attachments, download through a signed URL, and see the file
//! go when the lead is destroyed. Against a real S3-compatible server (`moto_server`, from the
//! Python package `moto[server]`; `.ci/run` installs it and sets `CRM_TEST_MOTO_SERVER`) and against the
//! default local directory. Another tenant can neither attach to the lead nor get a link.
//!
//! Without `moto_server` the S3 test says so and passes, except under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Killed, free_addr, graphql as gql};
use serde_json::{Value as Json, json};
use sha2::Digest;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_crm-server");

fn moto_server() -> Option<PathBuf> {
    let found = std::env::var_os("CRM_TEST_MOTO_SERVER").map(PathBuf::from).or_else(|| {
        Command::new("moto_server")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success()
            .then(|| PathBuf::from("moto_server"))
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: moto_server is needed (pip install 'moto[server]'; CRM_TEST_MOTO_SERVER)"
        );
        eprintln!("note: S3 test skipped (no moto_server; set CRM_TEST_MOTO_SERVER)");
    }
    found
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("crm-files-{name}-{}", uuid::Uuid::now_v7()))
}

fn cli(dir: &Path, args: &[&str]) -> String {
    let out = common::command(BIN, dir, args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn serve(dir: &Path, addr: SocketAddr, args: &[&str], env: &[(&str, String)]) -> Killed {
    let listen = addr.to_string();
    let mut all = vec!["--listen", listen.as_str(), "--worker-poll-ms", "50"];
    all.extend_from_slice(args);
    all.push("serve");
    let mut c = common::command(BIN, dir, &all);
    for (k, v) in env {
        c.env(k, v);
    }
    let served = Killed(c.stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap());
    common::wait_listening(addr).await;
    served
}

fn code(resp: &Json) -> &str {
    resp["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {resp}"))
}

const START: &str = "mutation($s: RecordRefInput!, $n: String!, $t: String!, $z: Long!) {
    startAttachmentUpload(subject: $s, fileName: $n, contentType: $t, size: $z) { id url method contentType expiresAt } }";
const DOWNLOAD: &str = "query($id: ID!) { attachmentDownload(id: $id) { url expiresAt } }";
const LIST: &str = "query($s: RecordRefInput!) {
    attachments(where: {subject: $s}) { id fileName contentType size status sha256 subject { type id } } }";

/// Everything a user of one storage does, checked: `object` reads what the store holds for an
/// attachment id (None: nothing).
async fn attach_download_destroy<F, Fut>(addr: SocketAddr, a: &str, sales: &str, b: &str, object: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Option<Vec<u8>>>,
{
    let http = reqwest::Client::new();
    let lead = gql(addr, a, "mutation { createLead(data: {name: \"Ada\"}) { id } }", json!({})).await;
    let lead = lead["data"]["createLead"]["id"].as_str().unwrap().to_owned();
    let subject = json!({ "type": "Lead", "id": lead });
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let sha = format!("{:x}", sha2::Sha256::digest(&bytes));

    // Limits and permissions, before anything is stored.
    let vars = |name: &str, ty: &str, size: usize| json!({ "s": subject, "n": name, "t": ty, "z": size });
    let r = gql(addr, a, START, vars("big.pdf", "application/pdf", 2_000_000)).await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    assert_eq!(r["errors"][0]["path"], json!(["startAttachmentUpload"]), "{r}");
    let r = gql(addr, a, START, vars("page.html", "text/html", 10)).await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    let r = gql(addr, b, START, vars("x.pdf", "application/pdf", 10)).await;
    assert_eq!(code(&r), "NOT_FOUND", "another tenant cannot attach to A's lead: {r}");
    let r =
        gql(addr, a, START, json!({ "s": { "type": "Lead", "id": uuid::Uuid::now_v7() }, "n": "x.pdf", "t": "application/pdf", "z": 10 }))
            .await;
    assert_eq!(code(&r), "NOT_FOUND", "{r}");
    let r = gql(addr, a, "mutation { createAttachment(data: {fileName: \"x.pdf\"}) { id } }", json!({})).await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "attachments are made by startAttachmentUpload: {r}");

    // Start: a PENDING attachment and a signed URL.
    let r = gql(addr, a, START, vars("Proposal ü.pdf", "application/pdf; charset=binary", bytes.len())).await;
    let up = &r["data"]["startAttachmentUpload"];
    assert_eq!(up["method"], "PUT", "{r}");
    assert_eq!(up["contentType"], "application/pdf", "{r}");
    let id = up["id"].as_str().unwrap().to_owned();
    let url = up["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("http://{addr}/files/")), "{url}");
    let r = gql(addr, a, DOWNLOAD, json!({ "id": id })).await;
    assert_eq!(code(&r), "BAD_USER_INPUT", "no link before the bytes: {r}");

    // Uploads that do not match what was declared store nothing.
    let put = |u: &str, ty: &str, body: Vec<u8>| http.put(u).header("content-type", ty).body(body).send();
    let resp = put(&url, "image/png", bytes.clone()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let mut more = bytes.clone();
    more.push(0);
    assert_eq!(put(&url, "application/pdf", more).await.unwrap().status().as_u16(), 413);
    assert_eq!(put(&url, "application/pdf", bytes[..100].to_vec()).await.unwrap().status().as_u16(), 400);
    let forged = forge(&url);
    assert_eq!(put(&forged, "application/pdf", bytes.clone()).await.unwrap().status().as_u16(), 403, "a changed grant is refused");
    assert!(object(id.clone()).await.is_none(), "nothing stored after refused uploads");

    // The upload.
    let resp = put(&url, "application/pdf", bytes.clone()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let done: Json = resp.json().await.unwrap();
    assert_eq!(done["sha256"], sha.as_str());
    assert_eq!(put(&url, "application/pdf", bytes.clone()).await.unwrap().status().as_u16(), 409, "once only");
    assert_eq!(object(id.clone()).await.as_deref(), Some(bytes.as_slice()), "the storage holds the bytes under the tenant's key");

    // Listed on the lead, for A only.
    let r = gql(addr, a, LIST, json!({ "s": subject })).await;
    assert_eq!(
        r["data"]["attachments"],
        json!([{ "id": id, "fileName": "Proposal ü.pdf", "contentType": "application/pdf", "size": bytes.len(),
                 "status": "READY", "sha256": sha, "subject": subject }]),
        "{r}"
    );
    let r = gql(addr, b, LIST, json!({ "s": subject })).await;
    assert_eq!(r["data"]["attachments"], json!([]), "{r}");

    // A sales rep of the tenant attaches too, and owns only what they attached.
    let r = gql(addr, sales, START, vars("notes.txt", "text/plain", 5)).await;
    let own = r["data"]["startAttachmentUpload"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let rename = "mutation($id: ID!) { updateAttachment(where: {id: $id}, data: {fileName: \"renamed.txt\"}) { fileName uploadedBy } }";
    let r = gql(addr, sales, rename, json!({ "id": own })).await;
    assert_eq!(r["data"]["updateAttachment"], json!({ "fileName": "renamed.txt", "uploadedBy": "sam" }), "{r}");
    let r = gql(addr, sales, rename, json!({ "id": id })).await;
    assert_eq!(code(&r), "FORBIDDEN", "not another's attachment: {r}");
    let r = gql(addr, a, "mutation($id: ID!) { updateAttachment(where: {id: $id}, data: {size: 1}) { id } }", json!({ "id": id })).await;
    assert!(r["errors"][0]["message"].as_str().unwrap().contains("size"), "size is the platform's: {r}");

    // Download through a signed URL.
    let r = gql(addr, b, DOWNLOAD, json!({ "id": id })).await;
    assert_eq!(code(&r), "NOT_FOUND", "another tenant gets no link: {r}");
    let r = gql(addr, a, DOWNLOAD, json!({ "id": id })).await;
    let link = r["data"]["attachmentDownload"]["url"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned();
    let resp = http.get(&link).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["content-disposition"], "attachment; filename=\"Proposal _.pdf\"; filename*=UTF-8''Proposal%20%C3%BC.pdf");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), bytes.as_slice());
    assert_eq!(http.get(forge(&link)).send().await.unwrap().status().as_u16(), 403);
    assert_eq!(http.get(&url).send().await.unwrap().status().as_u16(), 403, "an upload URL does not download");

    // Destroying the lead destroys its attachments, and the worker removes the object.
    let r = gql(addr, a, "mutation($id: ID!) { destroyLead(where: {id: $id}) { id } }", json!({ "id": lead })).await;
    assert!(r.get("errors").is_none(), "{r}");
    let r = gql(addr, a, "query($id: ID!) { attachment(where: {id: $id}) { id } attachmentsTrash { id } }", json!({ "id": id })).await;
    assert_eq!(r["data"], json!({ "attachment": null, "attachmentsTrash": [] }), "{r}");
    let start = Instant::now();
    while object(id.clone()).await.is_some() {
        assert!(start.elapsed() < Duration::from_secs(20), "the object is still stored 20 s after the destroy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http.get(&link).send().await.unwrap().status().as_u16(), 404);
}

/// `url` with its grant's tenant changed (the signature no longer matches).
fn forge(url: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (head, token) = url.rsplit_once('/').unwrap();
    let (payload, tag) = token.split_once('.').unwrap();
    let mut grant: Json = serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
    grant["org"] = json!("globex");
    format!("{head}/{}.{tag}", b64.encode(serde_json::to_vec(&grant).unwrap()))
}

#[tokio::test]
async fn attachments_go_through_s3_compatible_storage() {
    let Some(moto) = moto_server() else { return };
    let s3 = free_addr();
    let _moto = Killed(
        Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &s3.port().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::wait_listening(s3).await;
    let http = reqwest::Client::new();
    // Readable without signing, so the test can look at what the server stored.
    let created = http.put(format!("http://{s3}/crm-files")).header("x-amz-acl", "public-read").send().await.unwrap();
    let status = created.status();
    assert!(status.is_success(), "bucket: {status} {}", created.text().await.unwrap());

    let dir = tmp("s3");
    let a = cli(&dir, &["dev-token", "--org", "acme", "--sub", "ann"]);
    let sales = cli(&dir, &["dev-token", "--org", "acme", "--sub", "sam", "--roles", "sales"]);
    let b = cli(&dir, &["dev-token", "--org", "globex", "--sub", "bob"]);
    let addr = free_addr();
    let env = [
        ("AWS_ENDPOINT", format!("http://{s3}")),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ];
    let _server = serve(&dir, addr, &["--files-url", "s3://crm-files/crm", "--max-file-size", "1000000"], &env).await;
    let object = |id: String| {
        let http = http.clone();
        async move {
            let resp = http.get(format!("http://{s3}/crm-files/crm/orgs/acme/attachments/{id}")).send().await.unwrap();
            if resp.status().as_u16() == 404 {
                return None;
            }
            assert!(resp.status().is_success(), "{}", resp.status());
            Some(resp.bytes().await.unwrap().to_vec())
        }
    };
    attach_download_destroy(addr, &a, &sales, &b, object).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The default storage, on SQLite and (with `CRM_TEST_DATABASE_URL`) PostgreSQL, whose
/// tenants here are fresh ones (the database is shared with other tests).
#[tokio::test]
async fn attachments_go_to_the_data_directory_by_default() {
    let mut backends = vec![(None, "acme".to_owned(), "globex".to_owned())];
    if let Some(url) = crm_test_kit::postgres_url() {
        let fresh = |name: &str| format!("{name}{}", uuid::Uuid::now_v7().simple());
        backends.push((Some(url), fresh("acme"), fresh("globex")));
    }
    for (url, org_a, org_b) in backends {
        let dir = tmp("local");
        let a = cli(&dir, &["dev-token", "--org", &org_a, "--sub", "ann"]);
        let sales = cli(&dir, &["dev-token", "--org", &org_a, "--sub", "sam", "--roles", "sales"]);
        let b = cli(&dir, &["dev-token", "--org", &org_b, "--sub", "bob"]);
        let addr = free_addr();
        let mut args = vec!["--max-file-size", "1000000"];
        if let Some(url) = &url {
            args.extend(["--database-url", url.as_str()]);
        }
        let _server = serve(&dir, addr, &args, &[]).await;
        let files = dir.join("files");
        let object = |id: String| {
            let path = files.join("orgs").join(&org_a).join("attachments").join(id);
            async move { std::fs::read(path).ok() }
        };
        attach_download_destroy(addr, &a, &sales, &b, object).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
