#!/usr/bin/env node
// Runs the `graphql-http` package's server audit (conformance with the GraphQL over HTTP
// specification) against a running cmdb server and prints every result.
//
//   CMDB_TOKEN=<token> node audit.mjs http://127.0.0.1:8080/graphql [--strict]
//
// The server refuses anonymous requests, so every request the audit makes carries
// `Authorization: Bearer $CMDB_TOKEN` when CMDB_TOKEN is set.
//
// Exit status: 0 when every audit is `ok` (or only `notice`, the package's level for a
// failed MAY), 1 when any audit is `warn` (a failed SHOULD) or `error` (a failed MUST, or an
// audit that could not run at all), 2 on bad usage. With `--strict`, notices fail too.

import process from 'node:process';
import { serverAudits } from 'graphql-http';

const USAGE = 'usage: CMDB_TOKEN=<token> node audit.mjs <url of the GraphQL endpoint> [--strict]';
const REQUEST_TIMEOUT_MS = Number(process.env.CMDB_AUDIT_TIMEOUT_MS || 15000);

function parseArgs(argv) {
  const positional = argv.filter((a) => !a.startsWith('--'));
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  for (const flag of flags) {
    if (flag !== '--strict' && flag !== '--help') {
      throw new Error(`unknown option ${flag}`);
    }
  }
  if (flags.has('--help')) {
    console.log(USAGE);
    process.exit(0);
  }
  if (positional.length !== 1) {
    throw new Error('give exactly one URL');
  }
  const url = new URL(positional[0]);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`not an http(s) URL: ${positional[0]}`);
  }
  return { url: url.toString(), strict: flags.has('--strict') };
}

// The global fetch, with the bearer token added to every request and a time limit on each,
// so that a server that never answers fails the run instead of hanging it.
function authorizedFetch(token) {
  return (input, init = {}) => {
    const headers = new Headers(init.headers);
    if (token) {
      headers.set('authorization', `Bearer ${token}`);
    }
    const signal = init.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    return fetch(input, { ...init, headers, signal });
  };
}

// One audit, turned into a result whatever happens: the package throws (instead of
// returning a failed result) when a request cannot be made at all.
async function runAudit({ id, name, fn }) {
  try {
    return await fn();
  } catch (err) {
    const cause = err && err.cause ? ` (${err.cause.message ?? err.cause})` : '';
    return { id, name, status: 'error', reason: `the audit could not run: ${err?.message ?? err}${cause}` };
  }
}

async function describeResponse(response) {
  if (!response || typeof response.status !== 'number') {
    return '';
  }
  const type = response.headers.get('content-type') ?? '(none)';
  let body = '';
  try {
    if (!response.bodyUsed) {
      body = (await response.text()).replace(/\s+/g, ' ').slice(0, 200);
    }
  } catch {
    body = '';
  }
  return `HTTP ${response.status}, content-type ${type}${body ? `, body ${body}` : ''}`;
}

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`${err.message}\n${USAGE}`);
    process.exit(2);
  }
  const token = process.env.CMDB_TOKEN || '';
  const audits = serverAudits({ url: options.url, fetchFn: authorizedFetch(token) });

  console.log(`GraphQL over HTTP server audit of ${options.url} (${audits.length} audits)`);
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  // One at a time: the output follows the package's order and the server sees no burst.
  for (const audit of audits) {
    const result = await runAudit(audit);
    counts[result.status] = (counts[result.status] ?? 0) + 1;
    let line = `${result.status.padEnd(6)} ${result.id}  ${result.name}`;
    if (result.status !== 'ok') {
      line += `\n         reason: ${result.reason}`;
      const seen = await describeResponse(result.response);
      if (seen) {
        line += `\n         got: ${seen}`;
      }
    }
    console.log(line);
  }

  const failed = counts.error + counts.warn + (options.strict ? counts.notice : 0);
  console.log(
    `\n${counts.ok} ok, ${counts.notice} notice, ${counts.warn} warn, ${counts.error} error` +
      (failed ? ' — FAILED' : ' — passed'),
  );
  process.exit(failed ? 1 : 0);
}

await main();
