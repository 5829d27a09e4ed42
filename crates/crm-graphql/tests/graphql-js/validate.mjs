// Validates a GraphQL schema with the reference implementation (graphql-js 16).
//
//   node validate.mjs INTROSPECTION.json      the result of an introspection query (its `data`, or the
//                                             whole response): buildClientSchema + validateSchema, then
//                                             the printed SDL is rebuilt and validated once more
//   node validate.mjs --print-query [full]    prints the introspection query the Rust test sends
//                                             (`full`: with every optional field graphql-js 16 knows
//                                             that async-graphql serves); the .graphql files beside
//                                             this script are its output
//
// Exit status: 0 valid, 1 invalid (errors on stderr), 2 usage or unreadable input.
import { readFileSync } from 'node:fs';
import { buildClientSchema, buildSchema, getIntrospectionQuery, printSchema, validateSchema, version } from 'graphql';

export const FULL_OPTIONS = {
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  // `__Type.isOneOf` (the oneOf input objects RFC) is not served: the schema has no oneOf input.
  oneOf: false,
};

const args = process.argv.slice(2);
if (args[0] === '--print-query') {
  process.stdout.write(getIntrospectionQuery(args[1] === 'full' ? FULL_OPTIONS : undefined) + '\n');
  process.exit(0);
}
if (args.length !== 1) {
  console.error('usage: node validate.mjs INTROSPECTION.json | --print-query [full]');
  process.exit(2);
}

let introspection;
try {
  introspection = JSON.parse(readFileSync(args[0], 'utf8'));
} catch (e) {
  console.error(`cannot read ${args[0]}: ${e.message}`);
  process.exit(2);
}
if (introspection && introspection.data && !introspection.__schema) {
  introspection = introspection.data;
}

function report(stage, errors) {
  console.error(`graphql-js ${version}: ${errors.length} error(s) (${stage}):`);
  for (const e of errors) {
    console.error(`- ${e.message}`);
  }
  process.exit(1);
}

let schema;
try {
  // buildClientSchema itself rejects malformed introspection (unknown kinds, dangling type refs, ...).
  schema = buildClientSchema(introspection);
} catch (e) {
  report('buildClientSchema', [e]);
}
const errors = validateSchema(schema);
if (errors.length > 0) {
  report('validateSchema', errors);
}

// Round trip: the SDL graphql-js prints from the introspection must parse and validate as well.
const sdl = printSchema(schema);
try {
  const rebuilt = buildSchema(sdl);
  const rebuiltErrors = validateSchema(rebuilt);
  if (rebuiltErrors.length > 0) {
    report('validateSchema of the printed SDL', rebuiltErrors);
  }
} catch (e) {
  report('buildSchema of the printed SDL', [e]);
}

const types = Object.keys(schema.getTypeMap());
const own = types.filter((t) => !t.startsWith('__'));
console.log(`graphql-js ${version}: valid schema, ${types.length} types (${own.length} excluding introspection types), ${schema.getDirectives().length} directives`);
