// Executes a document with the reference implementation (graphql-js 16) over given root results,
// to hold the server's partial-failure responses to the specification (§6.4.4, §7.1.2): which
// fields are null, which parents a failing non-null field nulls, which paths the errors carry.
//
//   node execute.mjs CASE.json    {"sdl": "...", "query": "...", "variables": {...},
//                                  "roots": {"<response key>": <value> | {"__error": "<message>"}}}
//
// Every field resolves to its response key's value in its parent (the server's own result below
// the roots); a root whose entry is an error throws. Prints {"data": ..., "paths": [...]}.
import { readFileSync } from 'node:fs';
import { buildSchema, execute, parse } from 'graphql';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const schema = buildSchema(input.sdl);
const fieldResolver = (source, _args, _ctx, info) => {
  const key = info.path.key;
  const value = source?.[key];
  if (value && typeof value === 'object' && '__error' in value) throw new Error(value.__error);
  return value;
};
const result = await execute({
  schema,
  document: parse(input.query),
  rootValue: input.roots,
  variableValues: input.variables ?? {},
  fieldResolver,
});
const paths = (result.errors ?? []).map((e) => e.path).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
process.stdout.write(JSON.stringify({ data: result.data ?? null, paths }) + '\n');
