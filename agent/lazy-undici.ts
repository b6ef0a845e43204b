/**
 * undici, loaded when something first calls out over HTTP (a model
 * provider, the fetch_local_url tool, a standalone link's HTTP stream), not
 * when the gateway starts: it is ~9 MiB resident and ~60 ms of start-up that
 * a gateway which never calls out does not need.
 */
let loading: Promise<typeof import("undici")> | undefined;

export function undici(): Promise<typeof import("undici")> {
  loading ??= import("undici");
  return loading;
}
