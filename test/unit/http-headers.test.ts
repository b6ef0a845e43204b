import { test } from "node:test";
import assert from "node:assert/strict";
import { bearerToken, isHopByHop } from "../../shared/http-headers.ts";

test("bearerToken reads the token of a Bearer Authorization value", () => {
  assert.equal(bearerToken("Bearer abc.def.ghi"), "abc.def.ghi");
  assert.equal(bearerToken("bearer abc"), "abc");
  assert.equal(bearerToken("BEARER \t abc  "), "abc");
  // The scheme with no token: present but empty (callers refuse it as invalid, not missing).
  assert.equal(bearerToken("Bearer "), "");
  assert.equal(bearerToken("Bearer    "), "");
});

test("bearerToken refuses absent values and other schemes", () => {
  for (const v of [undefined, null, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearerabc", "abc", " Bearer abc", "Token abc"])
    assert.equal(bearerToken(v), undefined, String(v));
});

test("hop-by-hop headers are recognised; end-to-end ones are not", () => {
  for (const h of ["connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "proxy-connection"])
    assert.ok(isHopByHop(h), h);
  for (const h of ["content-type", "content-length", "content-encoding", "set-cookie", "etag"])
    assert.ok(!isHopByHop(h), h);
});
