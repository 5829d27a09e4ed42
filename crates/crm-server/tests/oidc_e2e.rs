//! Authentication end to end against a real OpenID provider (npm `oidc-provider`, shaped like
//! ZITADEL: tests/oidc/provider.mjs) started on loopback: JWT and opaque access tokens with
//! ZITADEL claims, tenant switching with `X-Org-Id`, key rotation, and the token attacks of
//! RFC 8725 — each rejected with 401 and no data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use clap::Parser;
use crm_server::{AppState, Config, connect, run};
use serde_json::{Value as Json, json};

const ORG_A: &str = "300000000000000010";
const ORG_B: &str = "300000000000000020";
const ORG_C: &str = "300000000000000030";

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: Config,
}

struct Provider {
    child: Child,
    _stdin: ChildStdin,
    issuer: String,
    project: String,
    client_id: String,
    secret: String,
    http: reqwest::Client,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the provider, or returns `None` (outside CI) when node or its packages are missing.
fn start_provider() -> Option<Provider> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !dir.join("node_modules").exists() {
        assert!(!ci, "CI=true: run `npm ci` in {} (the OpenID test provider)", dir.display());
        eprintln!("note: OpenID provider tests skipped (npm ci in {})", dir.display());
        return None;
    }
    let mut child = Command::new("node")
        .arg(dir.join("provider.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node must be installed for the OpenID provider tests");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).expect("the provider did not start within 30 s");
    let ready: Json =
        serde_json::from_str(line.trim_end().strip_prefix("READY ").unwrap_or_else(|| panic!("no READY line: {line:?}"))).unwrap();
    Some(Provider {
        child,
        _stdin: stdin,
        issuer: ready["issuer"].as_str().unwrap().to_owned(),
        project: ready["projectId"].as_str().unwrap().to_owned(),
        client_id: ready["clientId"].as_str().unwrap().to_owned(),
        secret: ready["clientSecret"].as_str().unwrap().to_owned(),
        http: reqwest::Client::new(),
    })
}

impl Provider {
    async fn post(&self, path: &str, body: Json) -> Json {
        let r = self.http.post(format!("{}{path}", self.issuer)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }
    /// A token issued by the provider for `sub` with `roles` (role -> orgs) in home org `org`.
    async fn token(&self, format: &str, sub: &str, org: &str, roles: &[(&str, &[&str])]) -> String {
        let roles: serde_json::Map<String, Json> = roles
            .iter()
            .map(|(r, orgs)| {
                ((*r).to_owned(), Json::Object(orgs.iter().map(|o| ((*o).to_owned(), json!(format!("{o}.localhost")))).collect()))
            })
            .collect();
        let t = self.post("/test/token", json!({"format": format, "sub": sub, "orgId": org, "resourceOwnerId": org, "roles": roles})).await;
        t["access_token"].as_str().unwrap().to_owned()
    }
    async fn sign(&self, header: Json, payload: Json) -> String {
        self.post("/test/sign", json!({"header": header, "payload": payload})).await["token"].as_str().unwrap().to_owned()
    }
    async fn jwks_hits(&self) -> u64 {
        let r = self.http.get(format!("{}/test/jwks-hits", self.issuer)).send().await.unwrap();
        r.json::<Json>().await.unwrap()["hits"].as_u64().unwrap()
    }
    /// Valid ZITADEL-shaped claims, to be spoiled one at a time.
    fn claims(&self, sub: &str) -> Json {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        json!({
            "iss": self.issuer, "sub": sub, "aud": [self.client_id, self.project], "client_id": self.client_id,
            "jti": format!("jti-{sub}-{now}"), "iat": now, "nbf": now, "exp": now + 600,
            "urn:zitadel:iam:org:id": ORG_A,
            format!("urn:zitadel:iam:org:project:{}:roles", self.project): {"admin": {ORG_A: "acme.localhost"}},
        })
    }
}

struct Server {
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), crm_server::ServerError>>>,
}

impl Server {
    async fn start(p: &Provider, introspection: bool) -> Server {
        let dir = std::env::temp_dir().join(format!("crm-oidc-{}", uuid::Uuid::now_v7()));
        let mut config = Args::parse_from(["crm-server", "--data-dir", dir.to_str().unwrap()]).config;
        config.database_url = None;
        config.oidc_issuer = Some(p.issuer.clone());
        config.oidc_project_id = Some(p.project.clone());
        if introspection {
            config.oidc_client_id = Some(p.client_id.clone());
            config.oidc_client_secret = Some(p.secret.clone());
        }
        let store = Arc::new(connect(&config).await.unwrap());
        store.migrate().await.unwrap();
        let state = AppState::new(store, &config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(state, listener, async move {
            let _ = rx.await;
        }));
        Server { base, http: reqwest::Client::new(), stop: Some(tx), task: Some(task) }
    }

    /// POSTs a GraphQL query with `authorization` (and `X-Org-Id`); returns status, the
    /// WWW-Authenticate header and the body.
    async fn gql(&self, authorization: Option<&str>, org: Option<&str>, query: &str) -> (u16, String, Json) {
        let mut r = self.http.post(format!("{}/graphql", self.base)).json(&json!({ "query": query }));
        if let Some(a) = authorization {
            r = r.header("authorization", a);
        }
        if let Some(o) = org {
            r = r.header("x-org-id", o);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let www = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, www, resp.json().await.unwrap_or(Json::Null))
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

const CREATE: &str = r#"mutation { createLead(data: {name: "Ada"}) { name } }"#;
const LIST: &str = "{ leads { name } }";

#[tokio::test]
async fn jwt_and_opaque_tokens_with_tenant_switching() {
    let Some(p) = start_provider() else { return };
    let s = Server::start(&p, true).await;
    // A user with admin in A and sales in A and B; another user only in B.
    let multi: &[(&str, &[&str])] = &[("admin", &[ORG_A]), ("sales", &[ORG_A, ORG_B])];
    let jwt_a = p.token("jwt", "310000000000000001", ORG_A, multi).await;
    let opaque_a = p.token("opaque", "310000000000000001", ORG_A, multi).await;
    let jwt_b = p.token("jwt", "310000000000000002", ORG_B, &[("admin", &[ORG_B])]).await;
    assert_eq!(jwt_a.split('.').count(), 3);
    assert_eq!(opaque_a.split('.').count(), 1, "an opaque token");

    let (st, _, body) = s.gql(Some(&bearer(&jwt_a)), None, CREATE).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["data"]["createLead"]["name"], "Ada");
    // The opaque token of the same user sees the same tenant (through introspection), twice
    // (the second answer comes from the cache).
    for _ in 0..2 {
        let (st, _, body) = s.gql(Some(&bearer(&opaque_a)), None, LIST).await;
        assert_eq!((st, body["data"]["leads"].clone()), (200, json!([{"name": "Ada"}])));
    }
    // Tenant B's user sees nothing of A.
    let (_, _, body) = s.gql(Some(&bearer(&jwt_b)), None, LIST).await;
    assert_eq!(body["data"]["leads"], json!([]));
    // The first user switches to B with X-Org-Id: their role there is sales (can read, cannot
    // create a member); C is not in their role map: 403.
    let (st, _, body) = s.gql(Some(&bearer(&jwt_a)), Some(ORG_B), LIST).await;
    assert_eq!((st, body["data"]["leads"].clone()), (200, json!([])));
    let (_, _, body) = s.gql(Some(&bearer(&jwt_a)), Some(ORG_B), r#"mutation { createMember(data: {name: "X"}) { id } }"#).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    let (st, _, body) = s.gql(Some(&bearer(&jwt_a)), Some(ORG_C), LIST).await;
    assert_eq!(st, 403, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert!(body.get("data").is_none());
    let (st, _, _) = s.gql(Some(&bearer(&opaque_a)), Some(ORG_C), LIST).await;
    assert_eq!(st, 403);
    // An opaque token is refused by a server without introspection configured.
    let plain = Server::start(&p, false).await;
    let (st, www, _) = plain.gql(Some(&bearer(&opaque_a)), None, LIST).await;
    assert_eq!(st, 401);
    assert!(www.starts_with("Bearer error=\"invalid_token\""), "{www}");
    plain.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn key_rotation_refetches_once() {
    let Some(p) = start_provider() else { return };
    let s = Server::start(&p, false).await;
    let roles: &[(&str, &[&str])] = &[("admin", &[ORG_A])];
    let old = p.token("jwt", "u1", ORG_A, roles).await;
    assert_eq!(s.gql(Some(&bearer(&old)), None, LIST).await.0, 200);
    let before = p.jwks_hits().await;
    p.post("/test/rotate", json!({})).await;
    let new = p.token("jwt", "u1", ORG_A, roles).await;
    // Ten concurrent requests with the unknown kid cause one JWKS fetch (single flight).
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (http, base, auth) = (s.http.clone(), s.base.clone(), bearer(&new));
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/graphql")).header("authorization", auth).json(&json!({"query": LIST})).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(p.jwks_hits().await - before, 1, "one refetch for the new key");
    // The old key is still published: its tokens stay valid, without another fetch.
    assert_eq!(s.gql(Some(&bearer(&old)), None, LIST).await.0, 200);
    // A token naming a kid the provider never published is refused; the refetch it causes is
    // rate-limited, so a flood of them cannot hammer the provider.
    let stranger = p.sign(json!({"kid": "no-such-key"}), p.claims("u1")).await;
    let hits = p.jwks_hits().await;
    for _ in 0..5 {
        assert_eq!(s.gql(Some(&bearer(&stranger)), None, LIST).await.0, 401);
    }
    assert!(p.jwks_hits().await - hits <= 1, "unknown kids are rate-limited");
    s.stop().await;
}

fn b64(v: &Json) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn token_attacks_are_rejected_with_401_and_no_data() {
    let Some(p) = start_provider() else { return };
    let s = Server::start(&p, false).await;
    // Something the attacker would like to read.
    let good = p.sign(json!({}), p.claims("owner")).await;
    let (st, _, body) = s.gql(Some(&bearer(&good)), None, CREATE).await;
    assert_eq!(st, 200, "the untouched token works: {body}");

    let now = p.claims("x")["iat"].as_u64().unwrap();
    let with = |k: &str, v: Json| {
        let mut c = p.claims("attacker");
        c[k] = v;
        c
    };
    let mut attacks: Vec<(&str, String)> = Vec::new();
    // alg none: no signature at all.
    attacks.push(("alg none", format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&p.claims("attacker")))));
    // HS256 keyed with the provider's public key (algorithm confusion).
    let hs = p.post("/test/sign", json!({"header": {"alg": "HS256"}, "payload": p.claims("attacker")})).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    attacks.push(("HS256 with the public key", hs));
    attacks.push(("expired", p.sign(json!({}), with("exp", json!(now - 3600))).await));
    attacks.push(("nbf in the future", p.sign(json!({}), with("nbf", json!(now + 3600))).await));
    attacks.push(("wrong issuer", p.sign(json!({}), with("iss", json!("https://evil.example"))).await));
    attacks.push(("wrong audience", p.sign(json!({}), with("aud", json!(["someone-else"]))).await));
    attacks.push(("unknown kid", p.sign(json!({"kid": "kid-unknown"}), p.claims("attacker")).await));
    let mut no_exp = p.claims("attacker");
    no_exp.as_object_mut().unwrap().remove("exp");
    attacks.push(("no exp", p.sign(json!({}), no_exp).await));
    // Tampered payload: a valid token whose payload is swapped for one with more roles.
    let parts: Vec<&str> = good.split('.').collect();
    let mut richer = p.claims("owner");
    richer["urn:zitadel:iam:org:id"] = json!(ORG_B);
    attacks.push(("tampered payload", format!("{}.{}.{}", parts[0], b64(&richer), parts[2])));
    // An ID token carries our project in aud too, but is not an access token.
    let mut id_token = p.claims("attacker");
    id_token["nonce"] = json!("n-0S6_WzA2Mj");
    id_token["at_hash"] = json!("77QmUPtjPfzWtF2AnpK9RQ");
    attacks.push(("ID token", p.sign(json!({}), id_token).await));
    // A header pointing at an attacker's key set.
    attacks.push(("jku header", p.sign(json!({"jku": "https://evil.example/keys"}), p.claims("attacker")).await));
    // A critical header extension the server does not understand (RFC 7515 §4.1.11: refuse),
    // on an otherwise valid token of the owner: `b64` (RFC 7797), which the signer knows.
    attacks.push(("unknown crit header", p.sign(json!({"crit": ["b64"], "b64": true}), p.claims("owner")).await));
    attacks.push(("oversized", format!("{}.{}.{}", parts[0], "A".repeat(9 * 1024), parts[2])));

    for (name, token) in attacks {
        let (st, www, body) = s.gql(Some(&bearer(&token)), None, LIST).await;
        assert_eq!(st, 401, "{name}: {body}");
        assert!(www.starts_with("Bearer error=\"invalid_token\""), "{name}: {www}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{name}");
        assert!(body.get("data").is_none(), "{name}: no data");
        if name == "expired" {
            assert!(body["errors"][0]["message"].as_str().unwrap().contains("expired"), "{body}");
            assert!(www.contains("expired"), "{www}");
        }
        // The reason a client acts on (refresh, or sign in again) without reading the message.
        let want = if name == "expired" { "TOKEN_EXPIRED" } else { "INVALID_TOKEN" };
        assert_eq!(body["errors"][0]["extensions"]["reason"], want, "{name}: {body}");
    }
    // No token, or another scheme: 401 with a bare challenge.
    for auth in [None, Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l")] {
        let (st, www, _) = s.gql(auth, None, LIST).await;
        assert_eq!((st, www.as_str()), (401, "Bearer"));
    }
    s.stop().await;
}
