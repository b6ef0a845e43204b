/** Credentials never survive in a printed URL (shared/redact-url.ts). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { redactUrl, redactUrlsInText } from "../../shared/redact-url.ts";

const JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz";

test("userinfo, secret query and fragment parameters and JWTs are redacted; the rest is kept", () => {
  const cases: [string, string][] = [
    ["wss://user:hunter2@relay.example/h/abc", "wss://***@relay.example/h/abc"],
    ["ws://127.0.0.1:18789/?token=s3cret&x=1", "ws://127.0.0.1:18789/?token=***&x=1"],
    ["https://relay.example/h/abc/?access_token=s3cret", "https://relay.example/h/abc/?access_token=***"],
    ["http://127.0.0.1:18789/#token=s3cret", "http://127.0.0.1:18789/#token=***"],
    ["ws://h/?a=1&password=pw&api_key=k&sig=zz&Token=T", "ws://h/?a=1&password=***&api_key=***&sig=***&Token=***"],
    [`wss://relay.example/h/${JWT}`, "wss://relay.example/h/***"],
    ["ws://127.0.0.1:18789", "ws://127.0.0.1:18789"],
    ["wss://relay.example/h/abc?page=2", "wss://relay.example/h/abc?page=2"],
  ];
  for (const [input, want] of cases) assert.equal(redactUrl(input), want, input);
});

test("works on strings that are not valid URLs (the ones echoed in URL_INVALID)", () => {
  assert.equal(redactUrl("ws://[bad/?token=s3cret"), "ws://[bad/?token=***");
  assert.equal(redactUrl("ws://u:p@[bad"), "ws://***@[bad");
  assert.ok(!redactUrl(`not a url ${JWT}`).includes(JWT));
});

test("URLs inside free text are redacted", () => {
  const t = redactUrlsInText('dialing "wss://me:pw@relay.example/h/x?token=abc" now');
  assert.equal(t, 'dialing "wss://***@relay.example/h/x?token=***" now');
});

test("the logger redacts credentials in URLs in messages and fields", async () => {
  const { createLogger } = await import("../../agent/log/logger.ts");
  const lines: string[] = [];
  const log = createLogger({ json: true, write: (l) => lines.push(l) });
  log.info("dialing wss://relay.example/h/x?token=s3cret-1", {
    relay: "wss://me:s3cret-2@relay.example",
    nested: { url: "http://127.0.0.1:1/#token=s3cret-3" },
  });
  const out = lines.join("\n");
  for (const s of ["s3cret-1", "s3cret-2", "s3cret-3"]) assert.ok(!out.includes(s), `${s} logged: ${out}`);
  assert.match(out, /token=\*\*\*/);
});
