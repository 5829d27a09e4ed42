#!/usr/bin/env node
// A real OpenID provider (npm `oidc-provider` 9.x, keys via `jose`) imitating ZITADEL on 127.0.0.1,
// for crm-server's authentication tests. Test-only: it has control endpoints that mint any token.
//
// START
//   node provider.mjs [--port N]        (default 0 = any free port; listens on 127.0.0.1 only)
//   When ready it prints exactly one line to stdout (nothing else is ever written to stdout;
//   oidc-provider's notices go to stderr):
//     READY {"issuer":"http://127.0.0.1:PORT","projectId":"300000000000000001","clientId":"crm-api","clientSecret":"crm-api-secret"}
//   It then runs until killed (SIGTERM/SIGINT/SIGKILL), until its stdin reaches EOF (only watched
//   when stdin is a pipe or socket: spawn it with a piped stdin and keep the write end open), or
//   until its parent process dies (the parent pid is polled once a second). A failure to start
//   prints the error to stderr and exits 1 without a READY line.
//
// OIDC ENDPOINTS (ZITADEL's paths; the issuer has no trailing slash)
//   GET  /.well-known/openid-configuration   discovery
//   GET  /oauth/v2/keys                      JWKS: every key ever generated (current one first),
//                                            unless a rotation retired the old ones; served with
//                                            Cache-Control: max-age=300 like ZITADEL
//   POST /oauth/v2/token                     token endpoint; grant client_credentials for client
//                                            crm-api (client_secret_basic) gives a JWT access token
//                                            with sub = "crm-api" and no ZITADEL org/role claims
//   POST /oauth/v2/introspect                RFC 7662 introspection of OPAQUE access tokens; the
//                                            caller authenticates as crm-api with HTTP Basic
//                                            (client_secret_basic). JWTs are answered with an error
//                                            by oidc-provider (structured tokens are not introspected)
//   GET  /oidc/v1/userinfo                   userinfo route (not usable with the test tokens below:
//                                            oidc-provider serves userinfo only for user-grant tokens)
//
// TEST CONTROL ENDPOINTS (JSON bodies, Content-Type not checked; errors: 4xx/5xx {"error": "..."})
//   POST /test/token  body (all fields optional):
//     { "format": "jwt" | "opaque",                    default "jwt"
//       "sub": "310000000000000001",                   default "310000000000000001"
//       "orgId": "300000000000000010",                 -> urn:zitadel:iam:org:id            (omitted if absent)
//       "resourceOwnerId": "300000000000000010",       -> urn:zitadel:iam:user:resourceowner:id (omitted if absent)
//       "roles": { "admin": { "300000000000000010": "acme.localhost" } },
//                                                      -> urn:zitadel:iam:org:project:300000000000000001:roles
//                                                         and urn:zitadel:iam:org:project:roles (omitted if absent)
//       "aud": ["..."] | "...",                        default ["crm-api", "300000000000000001"]
//       "expiresIn": 3600,                             seconds, positive integer, default 3600
//       "claims": { "any": "value" },                  extra/override payload claims, applied last
//       "omit": ["claim-name", ...] }                  claims to delete (JWT: any claim; opaque: only
//                                                      claims that come from the fields above)
//     -> 200 { "access_token": "...", "token_type": "Bearer", "expires_in": n, "kid": "..." | null }
//     The token is minted THROUGH oidc-provider: a ClientCredentials token of client crm-api bound to
//     a resource server whose accessTokenFormat is the requested format; the ZITADEL claims come from
//     `extraTokenClaims` and the JWT customizer. A JWT has header {alg: RS256, typ: "JWT", kid} and
//     payload iss, sub, aud (array), client_id "crm-api", jti, iat, nbf (= iat), exp plus the claims
//     above (no scope). An opaque token introspects as {active: true, sub, aud (array), client_id,
//     exp, iat, iss, token_type: "Bearer", urn:zitadel:... claims}.
//   POST /test/sign   body { "header": {...}, "payload": {...} }
//     -> 200 { "token": "..." } : compact JWS of `payload` exactly as given (no claim is added). The
//     header is { alg: "RS256", typ: "JWT", kid: <current kid> } overridden by `header`. With alg
//     RS*/PS* it is signed with the CURRENT signing key; alg "none" gives an unsecured JWT ending in
//     "."; alg HS256/384/512 is signed with HMAC keyed with body "hmacSecret" (string), by default
//     the current public key as SPKI PEM (the classic algorithm-confusion attack).
//   POST /test/rotate body optional { "keepOld": true }
//     -> 200 { "kid": "<new kid>" } : generates a new RS256 key and makes it the signing key of every
//     token issued afterwards; old keys stay in /oauth/v2/keys unless "keepOld": false.
//   GET  /test/jwks-hits
//     -> 200 { "hits": n } : how many requests reached /oauth/v2/keys since start.
//   POST /test/jwks-delay body { "ms": n }
//     -> 200 { "ms": n } : answers of /oauth/v2/keys are delayed by n ms from now on (0 = none); lets
//     tests observe single-flight JWKS refetches.
//   GET  /test/state
//     -> 200 { "issuer", "projectId", "clientId", "currentKid", "kids": [...published kids] }
//
// See README.md beside this file.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import * as jose from 'jose';

// oidc-provider prints notices with console.info (stdout); stdout carries only the READY line.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const { default: Provider } = await import('oidc-provider');

const PROJECT_ID = '300000000000000001';
const CLIENT_ID = 'crm-api';
const CLIENT_SECRET = 'crm-api-secret';
const DEFAULT_SUB = '310000000000000001';
const RESOURCE = `urn:zitadel:iam:org:project:id:${PROJECT_ID}`;
const PROJECT_ROLES = `urn:zitadel:iam:org:project:${PROJECT_ID}:roles`;
const GENERIC_ROLES = 'urn:zitadel:iam:org:project:roles';
const ORG_ID = 'urn:zitadel:iam:org:id';
const RESOURCE_OWNER_ID = 'urn:zitadel:iam:user:resourceowner:id';
const DEFAULT_TTL = 3600;

// Per-token test data, read by extraTokenClaims and the JWT customizer.
const TEST = Symbol('crm-test-claims');

function parsePort(argv) {
  for (let i = 0; i < argv.length; i += 1) {
    let value;
    if (argv[i] === '--port') value = argv[i + 1];
    else if (argv[i].startsWith('--port=')) value = argv[i].slice('--port='.length);
    else continue;
    const port = Number(value);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Error(`invalid --port ${value}`);
    }
    return port;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------- keys

let kidCounter = 0n;
function newKid() {
  // ZITADEL key ids are numeric strings; make them unique per process and per run.
  kidCounter += 1n;
  const base = 330000000000000000n + BigInt(crypto.randomInt(0, 1_000_000)) * 1_000n;
  return (base + kidCounter).toString();
}

async function generateSigningKey() {
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  const kid = newKid();
  return {
    kid,
    privateJwk: { ...jwk, kid, alg: 'RS256', use: 'sig' },
    privateKey,
    publicPem: await jose.exportSPKI(publicKey),
  };
}

/** Current key first; every key here is published and usable by the provider. */
let keys = [];

// ------------------------------------------------------------------------------------- adapter

// One in-memory store shared by every provider instance (a rotation re-creates the provider, and
// opaque tokens issued before it must still introspect).
const store = new Map();

class MemoryAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    store.set(this.key(id), { payload, expiresAt });
    if (payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      const members = store.get(grantKey) ?? { payload: [], expiresAt: undefined };
      members.payload.push(this.key(id));
      store.set(grantKey, members);
    }
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, { payload: id });
    if (payload.uid) store.set(`uid:${this.name}:${payload.uid}`, { payload: id });
  }

  async find(id) {
    const entry = store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt < Date.now() - 60_000) {
      store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUserCode(userCode) {
    const id = store.get(`userCode:${userCode}`)?.payload;
    return id === undefined ? undefined : this.find(id);
  }

  async findByUid(uid) {
    const id = store.get(`uid:${this.name}:${uid}`)?.payload;
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    for (const k of store.get(grantKey)?.payload ?? []) store.delete(k);
    store.delete(grantKey);
  }
}

// ------------------------------------------------------------------------------------ provider

function zitadelClaims(test) {
  const claims = { sub: test.sub };
  if (test.orgId !== undefined) claims[ORG_ID] = test.orgId;
  if (test.resourceOwnerId !== undefined) claims[RESOURCE_OWNER_ID] = test.resourceOwnerId;
  if (test.roles !== undefined) {
    claims[PROJECT_ROLES] = test.roles;
    claims[GENERIC_ROLES] = test.roles;
  }
  Object.assign(claims, test.claims);
  for (const name of test.omit) delete claims[name];
  return claims;
}

const cookieKeys = [crypto.randomBytes(32).toString('base64url')];

function createProvider(issuer) {
  const signingKid = keys[0].kid;
  const configuration = {
    adapter: MemoryAdapter,
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: keys.map((k) => k.privateJwk) },
    cookies: { keys: cookieKeys },
    routes: {
      authorization: '/oauth/v2/authorize',
      end_session: '/oidc/v1/end_session',
      introspection: '/oauth/v2/introspect',
      jwks: '/oauth/v2/keys',
      revocation: '/oauth/v2/revoke',
      token: '/oauth/v2/token',
      userinfo: '/oidc/v1/userinfo',
      device_authorization: '/oauth/v2/device_authorization',
    },
    features: {
      devInteractions: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client) => client.clientAuthMethod !== 'none',
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({
          scope: '',
          audience: PROJECT_ID,
          accessTokenFormat: 'jwt',
          accessTokenTTL: DEFAULT_TTL,
          jwt: { sign: { alg: 'RS256', kid: signingKid } },
        }),
      },
    },
    ttl: { ClientCredentials: DEFAULT_TTL, AccessToken: DEFAULT_TTL, IdToken: DEFAULT_TTL },
    // Opaque tokens: these become `token.extra`, returned by introspection. JWTs: spread into the
    // payload before the standard claims (sub is then fixed up by the customizer below).
    extraTokenClaims: async (ctx, token) => (token[TEST] ? zitadelClaims(token[TEST]) : undefined),
    formats: {
      customizers: {
        jwt: async (ctx, token, jwt) => {
          jwt.header = { ...jwt.header, typ: 'JWT' };
          const { payload } = jwt;
          if (!Array.isArray(payload.aud)) {
            payload.aud = [payload.client_id, ...(payload.aud && payload.aud !== payload.client_id ? [payload.aud] : [])];
          }
          payload.nbf = payload.iat;
          if (token[TEST]) {
            const test = token[TEST];
            payload.sub = test.sub;
            Object.assign(payload, test.claims);
            for (const name of test.omit) delete payload[name];
          }
        },
      },
    },
  };
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error:', err));
  return { provider, handler: provider.callback() };
}

// ---------------------------------------------------------------------------------- HTTP + test

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > 1 << 20) {
        reject(new HttpError(413, 'body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (!text) {
        resolve({});
        return;
      }
      try {
        const value = JSON.parse(text);
        if (value === null || typeof value !== 'object' || Array.isArray(value)) {
          reject(new HttpError(400, 'body must be a JSON object'));
        } else {
          resolve(value);
        }
      } catch (err) {
        reject(new HttpError(400, `invalid JSON: ${err.message}`));
      }
    });
    req.on('error', reject);
  });
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

const optionalString = (body, name) => {
  const value = body[name];
  if (value !== undefined && typeof value !== 'string') throw new HttpError(400, `${name} must be a string`);
  return value;
};

async function main() {
  const port = parsePort(process.argv.slice(2));
  keys = [await generateSigningKey()];

  let issuer;
  let current; // { provider, handler }
  let jwksHits = 0;
  let jwksDelayMs = 0;

  const test = {
    async token(body) {
      const format = body.format ?? 'jwt';
      if (format !== 'jwt' && format !== 'opaque') throw new HttpError(400, 'format must be "jwt" or "opaque"');
      const sub = optionalString(body, 'sub') ?? DEFAULT_SUB;
      const orgId = optionalString(body, 'orgId');
      const resourceOwnerId = optionalString(body, 'resourceOwnerId');
      const { roles } = body;
      if (roles !== undefined && (roles === null || typeof roles !== 'object' || Array.isArray(roles))) {
        throw new HttpError(400, 'roles must be an object');
      }
      let aud = body.aud ?? [CLIENT_ID, PROJECT_ID];
      if (typeof aud === 'string') aud = [aud];
      if (!Array.isArray(aud) || aud.some((a) => typeof a !== 'string')) {
        throw new HttpError(400, 'aud must be a string or an array of strings');
      }
      const expiresIn = body.expiresIn ?? DEFAULT_TTL;
      if (!Number.isSafeInteger(expiresIn) || expiresIn <= 0) {
        throw new HttpError(400, 'expiresIn must be a positive integer (seconds); use /test/sign for expired JWTs');
      }
      const claims = body.claims ?? {};
      if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new HttpError(400, 'claims must be an object');
      const omit = body.omit ?? [];
      if (!Array.isArray(omit) || omit.some((o) => typeof o !== 'string')) throw new HttpError(400, 'omit must be an array of strings');

      const { provider } = current;
      const client = await provider.Client.find(CLIENT_ID);
      const resourceServer = new provider.ResourceServer(RESOURCE, {
        scope: '',
        audience: PROJECT_ID,
        accessTokenFormat: format,
        accessTokenTTL: expiresIn,
        jwt: { sign: { alg: 'RS256', kid: keys[0].kid } },
      });
      const token = new provider.ClientCredentials({ client, resourceServer, expiresIn });
      // oidc-provider's setAudience keeps a single audience; ZITADEL sends an array.
      token.aud = aud;
      token[TEST] = {
        sub, orgId, resourceOwnerId, roles, claims, omit,
      };
      const accessToken = await token.save();
      return {
        access_token: accessToken,
        token_type: 'Bearer',
        expires_in: expiresIn,
        kid: format === 'jwt' ? keys[0].kid : null,
      };
    },

    async sign(body) {
      const header = body.header ?? {};
      const { payload } = body;
      if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new HttpError(400, 'header must be an object');
      if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new HttpError(400, 'payload must be an object');
      const key = keys[0];
      const protectedHeader = {
        alg: 'RS256', typ: 'JWT', kid: key.kid, ...header,
      };
      const { alg } = protectedHeader;
      const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const signingInput = `${b64(protectedHeader)}.${b64(payload)}`;
      if (alg === 'none') return { token: `${signingInput}.` };
      if (/^HS(256|384|512)$/.test(alg)) {
        const secret = optionalString(body, 'hmacSecret') ?? key.publicPem;
        const mac = crypto.createHmac(`sha${alg.slice(2)}`, secret).update(signingInput).digest('base64url');
        return { token: `${signingInput}.${mac}` };
      }
      if (/^(RS|PS)(256|384|512)$/.test(alg)) {
        const token = await new jose.CompactSign(Buffer.from(JSON.stringify(payload)))
          .setProtectedHeader(protectedHeader)
          .sign(key.privateKey);
        return { token };
      }
      throw new HttpError(400, `unsupported alg ${alg} (RS*, PS*, HS*, none)`);
    },

    async rotate(body) {
      const keepOld = body.keepOld ?? true;
      if (typeof keepOld !== 'boolean') throw new HttpError(400, 'keepOld must be a boolean');
      const key = await generateSigningKey();
      keys = keepOld ? [key, ...keys] : [key];
      current = createProvider(issuer);
      return { kid: key.kid };
    },

    jwksHits() {
      return { hits: jwksHits };
    },

    jwksDelay(body) {
      const { ms } = body;
      if (!Number.isSafeInteger(ms) || ms < 0) throw new HttpError(400, 'ms must be a non-negative integer');
      jwksDelayMs = ms;
      return { ms };
    },

    state() {
      return {
        issuer, projectId: PROJECT_ID, clientId: CLIENT_ID, currentKid: keys[0].kid, kids: keys.map((k) => k.kid),
      };
    },
  };

  const routes = {
    'POST /test/token': test.token,
    'POST /test/sign': test.sign,
    'POST /test/rotate': test.rotate,
    'GET /test/jwks-hits': test.jwksHits,
    'POST /test/jwks-delay': test.jwksDelay,
    'GET /test/state': test.state,
  };

  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://127.0.0.1').pathname;
    if (path.startsWith('/test/')) {
      const route = routes[`${req.method} ${path}`];
      try {
        if (!route) throw new HttpError(404, `no test route ${req.method} ${path}`);
        const body = req.method === 'POST' ? await readJson(req) : {};
        sendJson(res, 200, await route(body));
      } catch (err) {
        const status = err instanceof HttpError ? err.status : 500;
        if (status === 500) console.error('test endpoint error:', err);
        sendJson(res, status, { error: err.message });
      }
      return;
    }
    if (path === '/oauth/v2/keys') {
      jwksHits += 1;
      // ZITADEL serves its JWKS with max-age 300.
      res.setHeader('cache-control', 'max-age=300');
      if (jwksDelayMs > 0) await new Promise((resolve) => { setTimeout(resolve, jwksDelayMs); });
    }
    current.handler(req, res);
  });
  server.keepAliveTimeout = 5_000;

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  issuer = `http://127.0.0.1:${server.address().port}`;
  current = createProvider(issuer);

  const ready = {
    issuer, projectId: PROJECT_ID, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
  };
  process.stdout.write(`READY ${JSON.stringify(ready)}\n`);

  const exit = () => process.exit(0);
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);

  // Never outlive the test that spawned us.
  let stdinIsPipe = false;
  try {
    const stat = fs.fstatSync(0);
    stdinIsPipe = stat.isFIFO() || stat.isSocket();
  } catch {
    stdinIsPipe = false;
  }
  if (stdinIsPipe) {
    process.stdin.on('end', exit);
    process.stdin.on('error', exit);
    process.stdin.on('data', () => {});
    process.stdin.resume();
  }
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) exit();
  }, 1000).unref();
}

main().catch((err) => {
  console.error('provider.mjs failed to start:', err);
  process.exit(1);
});
