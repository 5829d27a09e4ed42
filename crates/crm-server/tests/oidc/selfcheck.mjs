#!/usr/bin/env node
// Self-check of provider.mjs: starts it as a child process the way the Rust harness does (piped
// stdin, READY line on stdout), exercises every endpoint and prints OK. No test framework.
//   node crates/crm-server/tests/oidc/selfcheck.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import * as jose from 'jose';

const here = path.dirname(fileURLToPath(import.meta.url));
const PROJECT_ROLES = 'urn:zitadel:iam:org:project:300000000000000001:roles';
const GENERIC_ROLES = 'urn:zitadel:iam:org:project:roles';
const ROLES = {
  admin: { '300000000000000010': 'acme.localhost' },
  member: { '300000000000000010': 'acme.localhost', '300000000000000020': 'globex.localhost' },
};

const child = spawn(process.execPath, [path.join(here, 'provider.mjs'), '--port', '0'], {
  stdio: ['pipe', 'pipe', 'inherit'],
});
const timer = setTimeout(() => {
  console.error('selfcheck: timed out');
  child.kill('SIGKILL');
  process.exit(1);
}, 30_000);

async function readReady() {
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const match = /^READY (\{.*\})$/.exec(line);
    if (!match) throw new Error(`unexpected stdout line: ${line}`);
    return JSON.parse(match[1]);
  }
  throw new Error('provider exited before READY');
}

async function main() {
  const ready = await readReady();
  assert.deepEqual(Object.keys(ready), ['issuer', 'projectId', 'clientId', 'clientSecret']);
  assert.match(ready.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(ready.projectId, '300000000000000001');
  assert.equal(ready.clientId, 'crm-api');
  assert.equal(ready.clientSecret, 'crm-api-secret');
  const { issuer, projectId, clientId, clientSecret } = ready;

  const call = async (method, p, body) => {
    const res = await fetch(`${issuer}${p}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json();
    assert.equal(res.status, 200, `${method} ${p}: ${JSON.stringify(json)}`);
    return json;
  };
  const basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
  const introspect = async (token, authorization = basic) => {
    const res = await fetch(`${issuer}/oauth/v2/introspect`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    return { status: res.status, body: await res.json() };
  };

  // Discovery at ZITADEL's paths.
  const discovery = await call('GET', '/.well-known/openid-configuration');
  assert.equal(discovery.issuer, issuer);
  assert.equal(discovery.jwks_uri, `${issuer}/oauth/v2/keys`);
  assert.equal(discovery.token_endpoint, `${issuer}/oauth/v2/token`);
  assert.equal(discovery.introspection_endpoint, `${issuer}/oauth/v2/introspect`);
  assert.equal(discovery.userinfo_endpoint, `${issuer}/oidc/v1/userinfo`);

  const hits0 = (await call('GET', '/test/jwks-hits')).hits;
  const jwks = jose.createLocalJWKSet(await call('GET', '/oauth/v2/keys'));
  assert.equal((await call('GET', '/test/jwks-hits')).hits, hits0 + 1);

  // JWT access token.
  const claims = {
    sub: '310000000000000001',
    orgId: '300000000000000010',
    resourceOwnerId: '300000000000000010',
    roles: ROLES,
  };
  const { access_token: jwt } = await call('POST', '/test/token', { format: 'jwt', ...claims });
  const { payload, protectedHeader } = await jose.jwtVerify(jwt, jwks, {
    issuer, audience: projectId, typ: 'JWT', algorithms: ['RS256'],
  });
  const firstKid = protectedHeader.kid;
  assert.ok(firstKid);
  assert.equal(protectedHeader.typ, 'JWT');
  assert.equal(payload.sub, claims.sub);
  assert.ok(Array.isArray(payload.aud));
  assert.deepEqual(payload.aud, [clientId, projectId]);
  assert.equal(payload.client_id, clientId);
  assert.equal(typeof payload.jti, 'string');
  for (const name of ['iat', 'nbf', 'exp']) assert.equal(typeof payload[name], 'number', name);
  assert.ok(payload.exp - payload.iat === 3600);
  assert.equal(payload.scope, undefined);
  assert.equal(payload['urn:zitadel:iam:org:id'], claims.orgId);
  assert.equal(payload['urn:zitadel:iam:user:resourceowner:id'], claims.resourceOwnerId);
  assert.deepEqual(payload[PROJECT_ROLES], ROLES);
  assert.deepEqual(payload[GENERIC_ROLES], ROLES);

  // Overrides: aud, expiresIn, claims, omit.
  {
    const { access_token: t } = await call('POST', '/test/token', {
      aud: ['other-client'], expiresIn: 60, claims: { 'urn:zitadel:iam:user:resourceowner:name': 'ACME' }, omit: ['nbf'],
    });
    const p = jose.decodeJwt(t);
    assert.deepEqual(p.aud, ['other-client']);
    assert.equal(p.exp - p.iat, 60);
    assert.equal(p.nbf, undefined);
    assert.equal(p['urn:zitadel:iam:user:resourceowner:name'], 'ACME');
    assert.equal(p.sub, '310000000000000001');
    assert.equal(p['urn:zitadel:iam:org:id'], undefined);
    assert.equal(p[PROJECT_ROLES], undefined);
  }

  // Opaque access token and introspection with HTTP Basic.
  const { access_token: opaque } = await call('POST', '/test/token', { format: 'opaque', ...claims });
  assert.equal(opaque.split('.').length, 1);
  const intro = await introspect(opaque);
  assert.equal(intro.status, 200);
  assert.equal(intro.body.active, true);
  assert.equal(intro.body.sub, claims.sub);
  assert.equal(intro.body.iss, issuer);
  assert.equal(intro.body.client_id, clientId);
  assert.deepEqual(intro.body.aud, [clientId, projectId]);
  assert.equal(typeof intro.body.exp, 'number');
  assert.equal(intro.body['urn:zitadel:iam:org:id'], claims.orgId);
  assert.equal(intro.body['urn:zitadel:iam:user:resourceowner:id'], claims.resourceOwnerId);
  assert.deepEqual(intro.body[PROJECT_ROLES], ROLES);
  assert.deepEqual(intro.body[GENERIC_ROLES], ROLES);
  assert.deepEqual((await introspect('not-a-token')).body, { active: false });
  const badAuth = await introspect(opaque, `Basic ${Buffer.from(`${clientId}:wrong`).toString('base64')}`);
  assert.equal(badAuth.status, 401);

  // The real token endpoint (client_credentials, Basic auth) gives a ZITADEL-shaped JWT too.
  {
    const res = await fetch(`${issuer}/oauth/v2/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    const { payload: p, protectedHeader: h } = await jose.jwtVerify(body.access_token, jwks, {
      issuer, audience: projectId, typ: 'JWT',
    });
    assert.equal(h.kid, firstKid);
    assert.deepEqual(p.aud, [clientId, projectId]);
  }

  // /test/sign with the current key: expired token, ID-token shape, header override, none, HS256.
  {
    const now = Math.floor(Date.now() / 1000);
    const { token: expired } = await call('POST', '/test/sign', {
      payload: { iss: issuer, sub: claims.sub, aud: [projectId], iat: now - 7200, exp: now - 3600 },
    });
    assert.equal(jose.decodeProtectedHeader(expired).kid, firstKid);
    await assert.rejects(jose.jwtVerify(expired, jwks, { issuer, audience: projectId }), { code: 'ERR_JWT_EXPIRED' });
    const { token: idToken } = await call('POST', '/test/sign', {
      payload: { iss: issuer, sub: claims.sub, aud: [clientId, projectId], iat: now, exp: now + 600, nonce: 'n', at_hash: 'x' },
    });
    const verified = await jose.jwtVerify(idToken, jwks, { issuer, audience: projectId });
    assert.equal(verified.payload.nonce, 'n');
    const { token: withHeader } = await call('POST', '/test/sign', {
      header: { typ: 'at+jwt', jku: 'http://127.0.0.1:1/evil' }, payload: { a: 1 },
    });
    const header = jose.decodeProtectedHeader(withHeader);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.jku, 'http://127.0.0.1:1/evil');
    assert.equal(header.kid, firstKid);
    const { token: none } = await call('POST', '/test/sign', { header: { alg: 'none' }, payload: { a: 1 } });
    assert.ok(none.endsWith('.'));
    const { token: hs } = await call('POST', '/test/sign', { header: { alg: 'HS256' }, payload: { a: 1 } });
    assert.equal(jose.decodeProtectedHeader(hs).alg, 'HS256');
  }

  // Rotation: JWKS lists both keys, new tokens use the new kid, old tokens still verify.
  const { kid: newKid } = await call('POST', '/test/rotate');
  assert.notEqual(newKid, firstKid);
  const rotatedSet = await call('GET', '/oauth/v2/keys');
  assert.equal(rotatedSet.keys.length, 2);
  assert.deepEqual(rotatedSet.keys.map((k) => k.kid), [newKid, firstKid]);
  assert.ok(rotatedSet.keys.every((k) => k.d === undefined), 'JWKS must not leak private keys');
  const rotatedJwks = jose.createLocalJWKSet(rotatedSet);
  const { access_token: jwt2 } = await call('POST', '/test/token', claims);
  const second = await jose.jwtVerify(jwt2, rotatedJwks, { issuer, audience: projectId, typ: 'JWT' });
  assert.equal(second.protectedHeader.kid, newKid);
  await jose.jwtVerify(jwt, rotatedJwks, { issuer, audience: projectId });
  await assert.rejects(jose.jwtVerify(jwt2, jwks, { issuer, audience: projectId }), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
  const { token: signed2 } = await call('POST', '/test/sign', { payload: { iss: issuer } });
  assert.equal(jose.decodeProtectedHeader(signed2).kid, newKid);
  assert.equal((await introspect(opaque)).body.active, true, 'opaque tokens survive a rotation');
  assert.equal((await call('GET', '/test/state')).currentKid, newKid);

  // Retiring old keys.
  const { kid: thirdKid } = await call('POST', '/test/rotate', { keepOld: false });
  assert.deepEqual((await call('GET', '/oauth/v2/keys')).keys.map((k) => k.kid), [thirdKid]);

  // JWKS hit counter and delay.
  assert.equal((await call('GET', '/test/jwks-hits')).hits, hits0 + 3);
  await call('POST', '/test/jwks-delay', { ms: 300 });
  const started = Date.now();
  await call('GET', '/oauth/v2/keys');
  assert.ok(Date.now() - started >= 250);
  await call('POST', '/test/jwks-delay', { ms: 0 });
  assert.equal((await call('GET', '/test/jwks-hits')).hits, hits0 + 4);

  // Bad request bodies answer 400.
  const bad = await fetch(`${issuer}/test/token`, { method: 'POST', body: '{"format":"paseto"}' });
  assert.equal(bad.status, 400);

  // stdin EOF ends the provider.
  const exited = once(child, 'exit');
  child.stdin.end();
  const [code] = await exited;
  assert.equal(code, 0);
}

main().then(() => {
  clearTimeout(timer);
  console.log('OK');
}, (err) => {
  clearTimeout(timer);
  console.error('selfcheck FAILED:', err);
  child.kill('SIGKILL');
  process.exit(1);
});
