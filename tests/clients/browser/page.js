// @sentry/browser on a page of another origin than the DSN's: `run()` sends through the SDK and
// by hand, and reports what the page could read of each answer. A CORS refusal shows up as an
// `error` (fetch throws a TypeError) instead of a status.
import * as Sentry from "@sentry/browser";

const dsn = new URL(new URLSearchParams(location.search).get("dsn"));
const publicKey = dsn.username;
const envelopeUrl = `${dsn.protocol}//${dsn.host}/api${dsn.pathname}/envelope/`;

// What the SDK's own fetch transport got back, per envelope it sent.
const sent = [];

function recordingTransport(options) {
  const transport = Sentry.makeFetchTransport(options);
  return {
    async send(envelope) {
      const items = envelope[1].map(([header]) => header.type);
      try {
        const response = await transport.send(envelope);
        sent.push({ items, status: response.statusCode ?? null });
        return response;
      } catch (error) {
        sent.push({ items, error: String(error) });
        throw error;
      }
    },
    flush: (timeout) => transport.flush(timeout),
  };
}

Sentry.init({
  dsn: dsn.href,
  release: "browser-cors@1.0.0",
  transport: recordingTransport,
});

function hexId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// A POST the browser must preflight: X-Sentry-Auth, the tracing headers and this
// Content-Type are not CORS-safelisted, so fetch sends OPTIONS first and only then the POST.
async function preflighted(key) {
  const eventId = hexId();
  const body =
    [
      JSON.stringify({ event_id: eventId, sent_at: new Date().toISOString() }),
      JSON.stringify({ type: "event" }),
      JSON.stringify({ event_id: eventId, message: "sent by hand", platform: "javascript" }),
    ].join("\n") + "\n";
  try {
    const response = await fetch(envelopeUrl, {
      method: "POST",
      body,
      headers: {
        "Content-Type": "application/x-sentry-envelope",
        "X-Sentry-Auth": `Sentry sentry_key=${key}, sentry_version=7, sentry_client=profd-cors-page/1.0`,
        "sentry-trace": `${hexId()}-${hexId().slice(0, 16)}-1`,
        baggage: "sentry-environment=test",
      },
    });
    return { eventId, status: response.status, body: await response.text() };
  } catch (error) {
    return { eventId, error: String(error) };
  }
}

window.run = async () => {
  const eventId = Sentry.captureMessage("hello from another origin");
  const flushed = await Sentry.flush(10000);
  return {
    eventId,
    flushed,
    sent,
    accepted: await preflighted(publicKey),
    refused: await preflighted("0123456789abcdef0123456789abcdef"),
  };
};
