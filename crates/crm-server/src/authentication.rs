//! Authentication: bearer tokens -> [`Principal`].
//!
//! Two modes, never both: an OpenID provider (ZITADEL) configured by issuer, whose JWT access
//! tokens are validated locally against its JWKS (cached, refetched once on an unknown `kid`,
//! single-flight and rate-limited) and whose opaque tokens go through token introspection (results
//! cached briefly); or development mode, where the server signs its own tokens with a key kept in
//! its data directory (`crm-server dev-token`). Both produce ZITADEL-shaped claims, so one
//! function turns claims into a Principal (tenant choice by `X-Org-Id`, proven by the role map).
//!
//! Tokens are never logged; `sub` and `jti` may be.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_model::ErrorCode;
use crm_model::{OrgId, RoleName};
use crm_orm::Principal;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

/// Largest `Authorization` header parsed.
pub const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;
/// The least time between two JWKS fetches caused by unknown key ids.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(5);
/// How long a loaded key set is trusted before it is reloaded (ZITADEL serves its JWKS with
/// `max-age=300`).
const JWKS_MAX_AGE: Duration = Duration::from_mins(5);
/// How long an introspection answer is reused.
const INTROSPECTION_TTL: Duration = Duration::from_secs(30);
const INTROSPECTION_CACHE_MAX: usize = 10_000;
/// Most verified JWTs kept (by digest) until they expire.
const VERIFIED_CACHE_MAX: usize = 10_000;
/// The audience and issuer of development tokens.
pub const DEV_ISSUER: &str = "crm-dev";
/// The project id development tokens carry their roles under.
pub const DEV_PROJECT: &str = "dev";
const ORG_CLAIM: &str = "urn:zitadel:iam:org:id";
const RESOURCE_OWNER_CLAIM: &str = "urn:zitadel:iam:user:resourceowner:id";
const GENERIC_ROLES_CLAIM: &str = "urn:zitadel:iam:org:project:roles";

/// A secret whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No bearer token.
    #[error("missing bearer token")]
    Missing,
    /// The token's `exp` has passed: the client should refresh.
    #[error("the token has expired")]
    Expired,
    /// Any other reason the token is not accepted (the text names no secret).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token is valid but grants nothing in the tenant asked for.
    #[error("no access to tenant `{0}`")]
    Forbidden(String),
    /// The identity provider could not be reached.
    #[error("authentication is temporarily unavailable")]
    Unavailable,
}

impl AuthError {
    /// The client code of the failure.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Forbidden(_) => ErrorCode::Forbidden,
            AuthError::Unavailable => ErrorCode::Unavailable,
            _ => ErrorCode::Unauthenticated,
        }
    }
}

impl AuthError {
    /// Why the token was refused, for a client to act on without reading the message
    /// (`extensions.reason`): `MISSING_TOKEN`, `TOKEN_EXPIRED` (refresh it), `INVALID_TOKEN`,
    /// `NO_TENANT_ACCESS`; none when the provider is unavailable.
    #[must_use]
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => Some("MISSING_TOKEN"),
            AuthError::Expired => Some("TOKEN_EXPIRED"),
            AuthError::Invalid(_) => Some("INVALID_TOKEN"),
            AuthError::Forbidden(_) => Some("NO_TENANT_ACCESS"),
            AuthError::Unavailable => None,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = match code {
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        let mut extensions = json!({ "code": code.as_str() });
        if let (Some(reason), Some(e)) = (self.reason(), extensions.as_object_mut()) {
            e.insert("reason".to_owned(), json!(reason));
        }
        let body = json!({ "errors": [{ "message": self.to_string(), "extensions": extensions }] });
        let mut resp = (status, axum::Json(body)).into_response();
        if code == ErrorCode::Unavailable {
            crate::http::retry_after(&mut resp);
        }
        if status == StatusCode::UNAUTHORIZED {
            let challenge = match &self {
                AuthError::Missing => "Bearer".to_owned(),
                other => format!("Bearer error=\"invalid_token\", error_description=\"{}\"", other.to_string().replace('"', "'")),
            };
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}

/// Settings of an OpenID provider.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The issuer URL, exactly as in tokens (no trailing slash for ZITADEL).
    pub issuer: String,
    /// Our project id: required in `aud`, and the key of the project role claim.
    pub project_id: String,
    /// Client credentials for token introspection (opaque tokens); none: opaque tokens refused.
    pub introspection: Option<(String, Secret)>,
    /// Clock leeway for `exp`/`nbf`, at most 30 s.
    pub leeway: Duration,
}

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    introspection_endpoint: Option<String>,
}

struct Jwks {
    uri: String,
    keys: RwLock<HashMap<String, (Algorithm, Arc<DecodingKey>)>>,
    /// When the key set was last loaded: older than [`JWKS_MAX_AGE`], it is reloaded, so keys the
    /// provider withdrew stop being accepted.
    loaded_at: Mutex<Instant>,
    last_fetch: Mutex<Option<Instant>>,
    fetching: tokio::sync::Mutex<()>,
}

/// The claims of JWTs whose signature and claims were verified, by the token's SHA-256, until
/// the token's `exp`: checking a signature costs more than the rest of a small request, and a
/// client sends the same token many times. Only verified tokens are kept, and a kept token is
/// refused again from its `exp` on (no leeway), so the cache never accepts what verification
/// would refuse, except a token whose key was withdrawn meanwhile (as with any stateless JWT).
///
/// The principal a verified token gives for a requested tenant is kept with its claims (it is a
/// function of them, the project and the tenant asked for), so a request with a known token
/// costs one hash and one lookup.
#[derive(Default)]
struct VerifiedTokens(Mutex<HashMap<[u8; 32], Verified>>);

/// A verified token's claims until its `exp`, and the principals it gave (by requested tenant).
struct Verified {
    exp: u64,
    claims: Arc<Json>,
    principals: Vec<(Option<Box<str>>, Principal)>,
}

/// Principals kept per token (one per tenant a client switches to with `X-Org-Id`).
const PRINCIPALS_PER_TOKEN: usize = 8;

fn digest_of(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl VerifiedTokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Verified>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, digest: &[u8; 32]) -> Option<Arc<Json>> {
        let now = jsonwebtoken::get_current_timestamp();
        self.lock().get(digest).filter(|v| now < v.exp).map(|v| Arc::clone(&v.claims))
    }

    fn put(&self, digest: [u8; 32], claims: &Arc<Json>) {
        let Some(exp) = claims.get("exp").and_then(Json::as_u64) else { return };
        let now = jsonwebtoken::get_current_timestamp();
        let mut cache = self.lock();
        if cache.len() >= VERIFIED_CACHE_MAX {
            cache.retain(|_, v| now < v.exp);
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(digest, Verified { exp, claims: Arc::clone(claims), principals: Vec::new() });
    }

    /// The principal the token of `digest` gave before for `requested`, and the token's `exp`,
    /// while it is valid.
    fn principal_of(&self, digest: &[u8; 32], requested: Option<&str>) -> Option<(Principal, u64)> {
        let now = jsonwebtoken::get_current_timestamp();
        let cache = self.lock();
        let v = cache.get(digest).filter(|v| now < v.exp)?;
        v.principals.iter().find(|(r, _)| r.as_deref() == requested).map(|(_, p)| (p.clone(), v.exp))
    }

    /// Keeps the principal the token of `digest` gave for `requested`.
    fn remember(&self, digest: &[u8; 32], requested: Option<&str>, p: &Principal) {
        if let Some(v) = self.lock().get_mut(digest)
            && v.principals.len() < PRINCIPALS_PER_TOKEN
        {
            v.principals.push((requested.map(Box::from), p.clone()));
        }
    }

    /// The claims of the token of `digest`, verified by `verify` unless verified before.
    async fn claims<F: Future<Output = Result<Json, AuthError>>>(
        &self,
        digest: [u8; 32],
        verify: impl FnOnce() -> F,
    ) -> Result<Arc<Json>, AuthError> {
        if let Some(claims) = self.get(&digest) {
            return Ok(claims);
        }
        let claims = Arc::new(verify().await?);
        self.put(digest, &claims);
        Ok(claims)
    }
}

/// An OpenID provider: discovery done, JWKS cached.
pub struct Oidc {
    settings: OidcSettings,
    http: reqwest::Client,
    jwks: Jwks,
    introspection_endpoint: Option<String>,
    introspected: Mutex<HashMap<[u8; 32], (Instant, Json)>>,
    verified: VerifiedTokens,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").field("issuer", &self.settings.issuer).finish_non_exhaustive()
    }
}

fn allowed_algorithm(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    let from_params = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(from_params),
        Some(KeyAlgorithm::RS256) if from_params == Algorithm::RS256 => Some(from_params),
        Some(KeyAlgorithm::ES256) if from_params == Algorithm::ES256 => Some(from_params),
        Some(KeyAlgorithm::EdDSA) if from_params == Algorithm::EdDSA => Some(from_params),
        Some(_) => None,
    }
}

impl Oidc {
    /// Discovers the provider (`/.well-known/openid-configuration`) and loads its keys.
    ///
    /// # Errors
    /// The provider is unreachable, or its discovery document names another issuer.
    pub async fn discover(settings: OidcSettings) -> Result<Oidc, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let url = format!("{}/.well-known/openid-configuration", settings.issuer.trim_end_matches('/'));
        let doc: Discovery = http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("OIDC discovery at {url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("OIDC discovery at {url}: {e}"))?;
        if doc.issuer != settings.issuer {
            return Err(format!("the provider at {url} calls itself `{}`, not `{}`", doc.issuer, settings.issuer));
        }
        let oidc = Oidc {
            http,
            jwks: Jwks {
                uri: doc.jwks_uri,
                keys: RwLock::new(HashMap::new()),
                loaded_at: Mutex::new(Instant::now()),
                last_fetch: Mutex::new(None),
                fetching: tokio::sync::Mutex::new(()),
            },
            introspection_endpoint: doc.introspection_endpoint,
            introspected: Mutex::new(HashMap::new()),
            verified: VerifiedTokens::default(),
            settings: OidcSettings { leeway: settings.leeway.min(Duration::from_secs(30)), ..settings },
        };
        oidc.refetch_keys().await.map_err(|e| format!("JWKS: {e}"))?;
        Ok(oidc)
    }

    async fn refetch_keys(&self) -> Result<(), String> {
        let set: JwkSet = self
            .http
            .get(&self.jwks.uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), allowed_algorithm(jwk)) else { continue };
            if let Ok(k) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (alg, Arc::new(k)));
            }
        }
        tracing::info!(keys = keys.len(), "loaded the provider's signing keys");
        if let Ok(mut k) = self.jwks.keys.write() {
            *k = keys;
        }
        if let Ok(mut t) = self.jwks.loaded_at.lock() {
            *t = Instant::now();
        }
        Ok(())
    }

    fn cached_key(&self, kid: &str) -> Option<(Algorithm, Arc<DecodingKey>)> {
        self.jwks.keys.read().ok().and_then(|k| k.get(kid).cloned())
    }

    /// The key of `kid`; an unknown `kid` triggers one refetch (single flight, at most one per
    /// [`JWKS_MIN_REFETCH`]), since providers rotate keys without notice.
    async fn key(&self, kid: &str) -> Result<(Algorithm, Arc<DecodingKey>), AuthError> {
        // A stale key set is reloaded by one request (the others go on with the cached keys).
        let stale = self.jwks.loaded_at.lock().is_ok_and(|t| t.elapsed() > JWKS_MAX_AGE);
        if stale
            && let Ok(_flight) = self.jwks.fetching.try_lock()
            && let Err(e) = self.refetch_keys().await
        {
            tracing::warn!(error = %e, "JWKS reload failed; keeping the cached keys");
            if let Ok(mut t) = self.jwks.loaded_at.lock() {
                *t = Instant::now();
            }
        }
        if let Some(k) = self.cached_key(kid) {
            return Ok(k);
        }
        let _flight = self.jwks.fetching.lock().await;
        if let Some(k) = self.cached_key(kid) {
            return Ok(k);
        }
        // Refetches caused by unknown key ids are rate-limited (the initial load does not count).
        let recent = self.jwks.last_fetch.lock().ok().and_then(|t| *t).is_some_and(|t| t.elapsed() < JWKS_MIN_REFETCH);
        if !recent {
            if let Ok(mut t) = self.jwks.last_fetch.lock() {
                *t = Some(Instant::now());
            }
            if let Err(e) = self.refetch_keys().await {
                tracing::warn!(error = %e, "JWKS refetch failed");
                return Err(AuthError::Unavailable);
            }
            if let Some(k) = self.cached_key(kid) {
                return Ok(k);
            }
        }
        Err(AuthError::Invalid("unknown signing key".to_owned()))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&[&self.settings.project_id]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v.leeway = self.settings.leeway.as_secs();
        v
    }

    async fn verify_jwt(&self, token: &str) -> Result<Json, AuthError> {
        let header = checked_header(token)?;
        let kid = header.kid.as_deref().ok_or_else(|| AuthError::Invalid("the token names no key".to_owned()))?;
        let (alg, key) = self.key(kid).await?;
        if header.alg != alg {
            return Err(AuthError::Invalid("the token's algorithm does not match its key".to_owned()));
        }
        let data = jsonwebtoken::decode::<Json>(token, &key, &self.validation(alg)).map_err(|e| jwt_error(&e))?;
        reject_id_token(&data.claims)?;
        Ok(data.claims)
    }

    async fn introspect(&self, token: &str) -> Result<Json, AuthError> {
        let (Some(endpoint), Some((client, secret))) = (&self.introspection_endpoint, &self.settings.introspection) else {
            return Err(AuthError::Invalid("opaque tokens are not accepted (no introspection configured)".to_owned()));
        };
        let digest = digest_of(token);
        if let Some((until, claims)) = self.introspected.lock().ok().and_then(|c| c.get(&digest).cloned())
            && Instant::now() < until
        {
            return check_introspected(&claims, &self.settings);
        }
        let resp = self
            .http
            .post(endpoint)
            .basic_auth(client, Some(&secret.0))
            .form(&[("token", token)])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| {
                tracing::warn!(error = %e, "token introspection failed");
                AuthError::Unavailable
            })?;
        let claims: Json = resp.json().await.map_err(|_| AuthError::Unavailable)?;
        let ttl = claims
            .get("exp")
            .and_then(Json::as_u64)
            .map_or(INTROSPECTION_TTL, |exp| Duration::from_secs(exp.saturating_sub(jsonwebtoken::get_current_timestamp())))
            .min(INTROSPECTION_TTL);
        if let Ok(mut cache) = self.introspected.lock() {
            if cache.len() >= INTROSPECTION_CACHE_MAX {
                cache.retain(|_, (until, _)| Instant::now() < *until);
                if cache.len() >= INTROSPECTION_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(digest, (Instant::now() + ttl, claims.clone()));
        }
        check_introspected(&claims, &self.settings)
    }
}

fn check_introspected(claims: &Json, s: &OidcSettings) -> Result<Json, AuthError> {
    if claims.get("active").and_then(Json::as_bool) != Some(true) {
        return Err(AuthError::Invalid("the token is not active".to_owned()));
    }
    let now = jsonwebtoken::get_current_timestamp();
    if claims.get("exp").and_then(Json::as_u64).is_some_and(|exp| exp + s.leeway.as_secs() < now) {
        return Err(AuthError::Expired);
    }
    if claims.get("iss").and_then(Json::as_str) != Some(s.issuer.as_str()) {
        return Err(AuthError::Invalid("wrong issuer".to_owned()));
    }
    let aud_ok = match claims.get("aud") {
        Some(Json::String(a)) => a == &s.project_id,
        Some(Json::Array(items)) => items.iter().any(|a| a.as_str() == Some(s.project_id.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(AuthError::Invalid("wrong audience".to_owned()));
    }
    Ok(claims.clone())
}

fn jwt_error(e: &jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => AuthError::Expired,
        K::ImmatureSignature => AuthError::Invalid("the token is not valid yet".to_owned()),
        K::InvalidIssuer => AuthError::Invalid("wrong issuer".to_owned()),
        K::InvalidAudience => AuthError::Invalid("wrong audience".to_owned()),
        K::InvalidSignature => AuthError::Invalid("bad signature".to_owned()),
        K::InvalidAlgorithm => AuthError::Invalid("the token's algorithm does not match its key".to_owned()),
        K::MissingRequiredClaim(c) => AuthError::Invalid(format!("missing claim `{c}`")),
        _ => AuthError::Invalid("malformed token".to_owned()),
    }
}

/// ID tokens also carry our project in `aud`; they are not access tokens.
fn reject_id_token(claims: &Json) -> Result<(), AuthError> {
    if claims.get("nonce").is_some() || claims.get("at_hash").is_some() {
        return Err(AuthError::Invalid("an ID token is not an access token".to_owned()));
    }
    Ok(())
}

/// The development signing key (HS256), kept in the data directory.
#[derive(Clone)]
pub struct DevKey {
    secret: Vec<u8>,
    verified: Arc<VerifiedTokens>,
}

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevKey(***)")
    }
}

impl DevKey {
    /// Loads `<data_dir>/dev-signing-key`, creating it (random, owner-only) if missing.
    ///
    /// # Errors
    /// The file cannot be read or written.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<DevKey> {
        Ok(DevKey { secret: crate::files::secret(data_dir, "dev-signing-key")?, verified: Arc::default() })
    }

    /// A development access token with ZITADEL-shaped claims: `roles` in `org` (and in every
    /// org of `extra_orgs`), valid for `ttl`.
    ///
    /// # Errors
    /// Signing failed (not expected with an HMAC key).
    pub fn token(&self, sub: &str, org: &str, roles: &[String], extra_orgs: &[String], ttl: Duration) -> Result<String, String> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut role_map = serde_json::Map::new();
        for r in roles {
            let mut orgs = serde_json::Map::new();
            for o in std::iter::once(org).chain(extra_orgs.iter().map(String::as_str)) {
                orgs.insert(o.to_owned(), Json::String(format!("{o}.localhost")));
            }
            role_map.insert(r.clone(), Json::Object(orgs));
        }
        let claims = json!({
            "iss": DEV_ISSUER,
            "aud": [DEV_PROJECT],
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + ttl.as_secs(),
            "jti": uuid::Uuid::now_v7().to_string(),
            ORG_CLAIM: org,
            format!("urn:zitadel:iam:org:project:{DEV_PROJECT}:roles"): role_map,
        });
        let header = Header { typ: Some("JWT".to_owned()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&self.secret)).map_err(|e| e.to_string())
    }

    fn verify(&self, token: &str) -> Result<Json, AuthError> {
        checked_header(token)?;
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[DEV_ISSUER]);
        v.set_audience(&[DEV_PROJECT]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v.leeway = 5;
        let data = jsonwebtoken::decode::<Json>(token, &DecodingKey::from_secret(&self.secret), &v).map_err(|e| jwt_error(&e))?;
        Ok(data.claims)
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Tokens of an OpenID provider.
    Oidc(Arc<Oidc>),
    /// Development tokens signed by the server itself.
    Dev(DevKey),
}

impl Authenticator {
    fn project_id(&self) -> &str {
        match self {
            Authenticator::Oidc(o) => &o.settings.project_id,
            Authenticator::Dev(_) => DEV_PROJECT,
        }
    }

    /// The principal of a request: its bearer token verified, its tenant chosen (`X-Org-Id`, or
    /// the token's org), its roles in that tenant.
    ///
    /// # Errors
    /// 401-class errors for missing, malformed, expired or wrongly addressed tokens; `Forbidden`
    /// when `X-Org-Id` names a tenant the token grants nothing in.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        self.authenticate_until(headers).await.map(|(p, _)| p)
    }

    /// Like [`Authenticator::authenticate`], with the token's expiry (its verified `exp`, in
    /// seconds since the epoch; none for a token without one): what a long-lived connection is
    /// closed at.
    ///
    /// # Errors
    /// As [`Authenticator::authenticate`].
    pub async fn authenticate_until(&self, headers: &HeaderMap) -> Result<(Principal, Option<u64>), AuthError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else { return Err(AuthError::Missing) };
        if value.len() > MAX_AUTHORIZATION_LEN {
            return Err(AuthError::Invalid("the Authorization header is too large".to_owned()));
        }
        let text = value.to_str().map_err(|_| AuthError::Invalid("malformed Authorization header".to_owned()))?;
        let token = match text.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => t.trim(),
            _ => return Err(AuthError::Missing),
        };
        let requested = headers
            .get("x-org-id")
            .map(|v| v.to_str().map(str::trim))
            .transpose()
            .map_err(|_| AuthError::Invalid("malformed X-Org-Id header".to_owned()))?;
        let digest = digest_of(token);
        let (verified, claims): (Option<&VerifiedTokens>, Arc<Json>) = match self {
            Authenticator::Dev(k) => {
                if let Some((p, exp)) = k.verified.principal_of(&digest, requested) {
                    return Ok((p, Some(exp)));
                }
                (Some(&k.verified), k.verified.claims(digest, || async { k.verify(token) }).await?)
            }
            Authenticator::Oidc(o) if token.split('.').count() == 3 => {
                if let Some((p, exp)) = o.verified.principal_of(&digest, requested) {
                    return Ok((p, Some(exp)));
                }
                (Some(&o.verified), o.verified.claims(digest, || o.verify_jwt(token)).await?)
            }
            Authenticator::Oidc(o) => (None, Arc::new(o.introspect(token).await?)),
        };
        let p = principal_from_claims(&claims, self.project_id(), requested)?;
        if let Some(v) = verified {
            v.remember(&digest, requested, &p);
        }
        tracing::debug!(sub = %p.sub, org = %p.org_id, jti = claims.get("jti").and_then(Json::as_str).unwrap_or(""), "authenticated");
        Ok((p, claims.get("exp").and_then(Json::as_u64)))
    }
}

/// The Principal rule of ZITADEL.md: `sub`; the tenant from `X-Org-Id` when given (it must appear
/// in the role map), else the token's org, else the user's home org; the roles whose org map
/// holds that tenant (project claim first, the generic one as fallback).
///
/// # Errors
/// No `sub`, no tenant, a requested tenant without grant.
pub fn principal_from_claims(claims: &Json, project_id: &str, requested: Option<&str>) -> Result<Principal, AuthError> {
    let sub = claims
        .get("sub")
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty() && !s.contains('\0'))
        .ok_or_else(|| AuthError::Invalid("no subject".to_owned()))?;
    let project_claim = format!("urn:zitadel:iam:org:project:{project_id}:roles");
    let role_map = claims.get(&project_claim).or_else(|| claims.get(GENERIC_ROLES_CLAIM)).and_then(Json::as_object);
    let granted_in = |org: &str| role_map.is_some_and(|m| m.values().any(|orgs| orgs.get(org).is_some()));
    let org = match requested {
        Some(r) if !r.is_empty() => {
            if !granted_in(r) {
                return Err(AuthError::Forbidden(r.to_owned()));
            }
            r.to_owned()
        }
        _ => claims
            .get(ORG_CLAIM)
            .or_else(|| claims.get(RESOURCE_OWNER_CLAIM))
            .and_then(Json::as_str)
            .ok_or_else(|| AuthError::Invalid("the token names no organization".to_owned()))?
            .to_owned(),
    };
    let org_id = OrgId::new(&org).map_err(|_| AuthError::Invalid("the organization id is not valid".to_owned()))?;
    let mut roles = Vec::new();
    if let Some(m) = role_map {
        for (role, orgs) in m {
            if orgs.get(&org).is_some() {
                if let Ok(r) = RoleName::new(role) {
                    roles.push(r);
                } else {
                    tracing::debug!(role, "ignoring a role name the platform cannot use");
                }
            }
        }
    }
    Ok(Principal { sub: sub.to_owned(), org_id, roles })
}

/// The token's header, refused when it asks for something this server does not do: key
/// references (`jku`, `x5u`, `jwk`, `x5c`: the key comes from the provider's key set only) and
/// critical extensions (`crit`: RFC 7515 §4.1.11 requires refusing a token whose critical
/// extensions are not understood, and this server understands none).
fn checked_header(token: &str) -> Result<jsonwebtoken::Header, AuthError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid("malformed token".to_owned()))?;
    if header.jku.is_some() || header.x5u.is_some() || header.jwk.is_some() || header.x5c.is_some() {
        return Err(AuthError::Invalid("key references in the token header are not accepted".to_owned()));
    }
    if header.crit.is_some() {
        return Err(AuthError::Invalid("the token has critical header extensions this server does not support".to_owned()));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    fn claims() -> Json {
        json!({
            "sub": "310000000000000001",
            "urn:zitadel:iam:org:id": "300000000000000010",
            "urn:zitadel:iam:org:project:300000000000000001:roles": {
                "admin": {"300000000000000010": "acme.localhost"},
                "sales": {"300000000000000010": "acme.localhost", "300000000000000020": "globex.localhost"}
            },
            "urn:zitadel:iam:org:project:roles": {"viewer": {"300000000000000099": "other"}}
        })
    }

    #[test]
    fn principal_rule() {
        let p = principal_from_claims(&claims(), "300000000000000001", None).unwrap();
        assert_eq!(p.org_id.as_str(), "300000000000000010");
        let mut roles: Vec<&str> = p.roles.iter().map(RoleName::as_str).collect();
        roles.sort_unstable();
        assert_eq!(roles, ["admin", "sales"]);
        // Switching tenant by X-Org-Id: proven by the role map.
        let p = principal_from_claims(&claims(), "300000000000000001", Some("300000000000000020")).unwrap();
        assert_eq!(p.org_id.as_str(), "300000000000000020");
        assert_eq!(p.roles.iter().map(RoleName::as_str).collect::<Vec<_>>(), ["sales"]);
        assert!(matches!(principal_from_claims(&claims(), "300000000000000001", Some("300000000000000099")), Err(AuthError::Forbidden(_))));
        // Another project's claim name: the generic claim is the fallback.
        let p = principal_from_claims(&claims(), "999", Some("300000000000000099")).unwrap();
        assert_eq!(p.roles.iter().map(RoleName::as_str).collect::<Vec<_>>(), ["viewer"]);
        // No org at all.
        assert!(principal_from_claims(&json!({"sub": "x"}), "1", None).is_err());
    }

    #[test]
    fn dev_tokens_round_trip_and_expire() {
        let dir = std::env::temp_dir().join(format!("crm-dev-key-{}", uuid::Uuid::now_v7()));
        let key = DevKey::load_or_create(&dir).unwrap();
        let again = DevKey::load_or_create(&dir).unwrap();
        assert_eq!(key.secret, again.secret, "the key persists");
        let t = key.token("alice", "acme", &["admin".to_owned()], &[], Duration::from_mins(1)).unwrap();
        let c = key.verify(&t).unwrap();
        let p = principal_from_claims(&c, DEV_PROJECT, None).unwrap();
        assert_eq!((p.sub.as_str(), p.org_id.as_str()), ("alice", "acme"));
        let other = DevKey::load_or_create(&dir.join("other")).unwrap();
        assert!(matches!(other.verify(&t), Err(AuthError::Invalid(_))));
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod verified_tokens {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        h
    }

    #[tokio::test]
    async fn a_verified_token_is_reused_until_it_expires_and_a_forged_one_never() {
        let dir = std::env::temp_dir().join(format!("crm-auth-{}", uuid::Uuid::now_v7()));
        let key = DevKey::load_or_create(&dir).unwrap();
        let auth = Authenticator::Dev(key.clone());
        let roles = ["admin".to_owned()];
        let good = key.token("u1", "org-a", &roles, &[], Duration::from_mins(1)).unwrap();
        for _ in 0..2 {
            let p = auth.authenticate(&headers(&good)).await.unwrap();
            assert_eq!((p.sub.as_str(), p.org_id.as_str()), ("u1", "org-a"));
        }
        // Another tenant's token is its own entry.
        let other = key.token("u2", "org-b", &roles, &[], Duration::from_mins(1)).unwrap();
        assert_eq!(auth.authenticate(&headers(&other)).await.unwrap().org_id.as_str(), "org-b");
        // A token signed with another key is refused, also after the good one was cached.
        let forger = DevKey::load_or_create(&dir.join("other")).unwrap();
        let forged = forger.token("u1", "org-a", &roles, &[], Duration::from_mins(1)).unwrap();
        assert!(auth.authenticate(&headers(&forged)).await.is_err());
        // An entry past its `exp` is not used: the token is verified again.
        let digest = digest_of(&good);
        key.verified.put(digest, &Arc::new(json!({"exp": 1, "sub": "stale"})));
        assert_eq!(key.verified.get(&digest), None);
        assert_eq!(auth.authenticate(&headers(&good)).await.unwrap().sub, "u1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The principals a token gives are kept per requested tenant: each tenant asked for gets
    /// its own, and a tenant the token grants nothing in is refused every time.
    #[tokio::test]
    async fn kept_principals_follow_the_requested_tenant() {
        let dir = std::env::temp_dir().join(format!("crm-auth-{}", uuid::Uuid::now_v7()));
        let key = DevKey::load_or_create(&dir).unwrap();
        let auth = Authenticator::Dev(key.clone());
        let token = key.token("u1", "org-a", &["admin".to_owned()], &["org-b".to_owned()], Duration::from_mins(1)).unwrap();
        let asking = |org: Option<&str>| {
            let mut h = headers(&token);
            if let Some(o) = org {
                h.insert("x-org-id", HeaderValue::from_str(o).unwrap());
            }
            h
        };
        for _ in 0..2 {
            assert_eq!(auth.authenticate(&asking(None)).await.unwrap().org_id.as_str(), "org-a");
            assert_eq!(auth.authenticate(&asking(Some("org-b"))).await.unwrap().org_id.as_str(), "org-b");
            assert!(matches!(auth.authenticate(&asking(Some("org-c"))).await, Err(AuthError::Forbidden(_))));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
