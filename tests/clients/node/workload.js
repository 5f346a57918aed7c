// A CPU-bound workload under @sentry/node profiling.  Usage: node workload.js DSN MODE SECONDS
// MODE "transaction" (SDK 9: profilesSampleRate) or "continuous" (SDK 10+: profile sessions).
const Sentry = require("@sentry/node");
const { nodeProfilingIntegration } = require("@sentry/profiling-node");

const [dsn, mode, seconds] = process.argv.slice(2);
const options = { dsn, integrations: [nodeProfilingIntegration()], tracesSampleRate: 1.0,
                  release: `node-workload@${mode}`, environment: "test" };
if (mode === "transaction") options.profilesSampleRate = 1.0;
else Object.assign(options, { profileSessionSampleRate: 1.0, profileLifecycle: "trace" });
Sentry.init(options);

function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
function renderRows(count) { return JSON.stringify(Array.from({ length: count }, (_, i) => ({ id: i, name: `row${i}` }))); }
function sortWords(count) { return Array.from({ length: count }, (_, i) => String(i).split("").reverse().join("")).sort(); }
function handleRequest(i) { fib(18 + (i % 3)); renderRows(500); if (i % 2) sortWords(5000); }

Sentry.startSpan({ name: `node-workload-${mode}`, op: "task" }, () => {
  const end = Date.now() + Number(seconds) * 1000;
  for (let i = 0; Date.now() < end; i++) handleRequest(i);
});
setTimeout(async () => { await Sentry.flush(10000); process.exit(0); }, 500);
