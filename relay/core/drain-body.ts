/**
 * What is left of a request's body when the relay answers without reading it
 * (a refusal: no token, a bad shape, a browser policy), read and dropped
 * before the answer goes out.
 *
 * Under workerd an answer that leaves part of a request body unread leaves
 * the connection it came on out of step: the runtime reads the rest after
 * the response is sent (an uncaught "Can't read from request stream after
 * response has been sent"), and the next request on that keep-alive
 * connection hangs or is reset. Measured through the local Workers relay: a
 * refused 100 KB POST left the next GET on the connection unanswered every
 * time, a 1-byte one about 1 time in 40. Node dumps unread bodies by itself;
 * draining first does no harm there.
 *
 * Bounded: a body declared larger than `limit` is not read (its answer is a
 * 413, and the connection may be closed), and reading stops past `limit`.
 */
export async function drainUnreadBody(req: Request, limit: number): Promise<void> {
  const body = req.body;
  if (!body || req.bodyUsed || body.locked) return;
  const declared = Number(req.headers.get("content-length"));
  if (declared > limit) {
    await body.cancel().catch(() => {});
    return;
  }
  const reader = body.getReader();
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      bytes += value.byteLength;
      if (bytes > limit) {
        await reader.cancel();
        return;
      }
    }
  } catch {
    // The client went away mid-body: nothing left to keep in step.
  }
}
