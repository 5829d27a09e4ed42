// A subscription client as an app runs it: graphql-ws (the protocol library of Apollo Client and
// urql) over `ws`. Usage: node client.mjs <ws-url> <token> <subscription document> [variables JSON]
// Prints one JSON line per event: {"next": payload} for each result, {"error": …},
// {"complete": true}, {"closed": code, "reason": …}; "ready" once the subscription is sent.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, query, vars] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  lazy: false,
  on: {
    connected: () => out({ connected: true }),
    closed: (e) => { out({ closed: e.code, reason: e.reason }); process.exit(0); },
  },
});
client.subscribe(
  { query, variables: vars ? JSON.parse(vars) : {} },
  { next: (p) => out({ next: p }), error: (e) => out({ error: String(e?.message ?? e?.reason ?? JSON.stringify(e)) }), complete: () => out({ complete: true }) },
);
out('ready');
