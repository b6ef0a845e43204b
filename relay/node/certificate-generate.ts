/**
 * Makes the relay's self-signed certificate, in a process of its own
 * (certificate.ts runs it): the generator's modules (@peculiar/x509, pkijs,
 * asn1js) then never enter the relay's heap, where they would stay for the
 * relay's whole life and be marked again by every full collection.
 *
 * Reads `{ attrs, options }` as JSON on stdin (dates as ISO strings), writes
 * `{ cert, private }` as JSON on stdout.
 */
import { text } from "node:stream/consumers";
import selfsigned from "selfsigned";

type Generate = typeof selfsigned.generate;
const input = JSON.parse(await text(process.stdin)) as {
  attrs: Parameters<Generate>[0];
  options: Parameters<Generate>[1] & { notBeforeDate: string; notAfterDate: string };
};
const pems = await selfsigned.generate(input.attrs, {
  ...input.options,
  notBeforeDate: new Date(input.options.notBeforeDate),
  notAfterDate: new Date(input.options.notAfterDate),
});
process.stdout.write(JSON.stringify({ cert: pems.cert, private: pems.private }));
