/**
 * Client commands: `loopgate health`, `loopgate status [--deep]`,
 * `loopgate gateway health|status|call`. Same client, same credential rules.
 */
import type { Command } from "commander";
import { LoopgateError, ErrorCodes } from "../../../shared/errors.ts";
import type { CallPath } from "../../../shared/credentials.ts";
import type { GatewayClient } from "../../client/gateway-client.ts";
import type { TargetFlags, ClientTarget } from "../../client/target.ts";
import { printJson } from "../output.ts";
import { action, configFlag } from "../action.ts";
import { redactUrl } from "../../../shared/redact-url.ts";

type Flags = TargetFlags & {
  json?: boolean;
  deep?: boolean;
  params?: string;
  expectFinal?: boolean;
  message?: string;
  session?: string;
  to?: string;
  channel?: string;
};

export function addTargetOptions(cmd: Command): Command {
  return cmd
    .option(
      "--url <url>",
      "gateway URL (ws://127.0.0.1:PORT or wss://RELAY/h/HOSTID); needs explicit credentials (--token-file, --token, --password-file or --password)",
    )
    .option(
      "--token-file <path>",
      "read the gateway or relay client token from a file (mode 0600; - for stdin). Recommended",
    )
    .option(
      "--token <token>",
      "gateway or relay client token; visible to other users in ps, prefer --token-file (or, without --url, $OPENCLAW_GATEWAY_TOKEN or config)",
    )
    .option("--password-file <path>", "read the gateway password from a file (mode 0600; - for stdin). Recommended")
    .option(
      "--password <password>",
      "gateway password; visible to other users in ps, prefer --password-file (or, without --url, $OPENCLAW_GATEWAY_PASSWORD)",
    )
    .option("--tls-fingerprint <pins>", "SHA-256 pin(s) of the wss:// certificate, comma-separated")
    .option("--timeout <ms>", "give up after this many milliseconds (default 10000)")
    .option("--json", "print one JSON document");
}

// Client modules load on demand, so `gateway run` starts without them.
export async function openClient(t: ClientTarget, scopes: string[]): Promise<GatewayClient> {
  const { GatewayClient } = await import("../../client/gateway-client.ts");
  return GatewayClient.connect({
    scopes,
    url: t.target.url,
    token: t.target.token?.value,
    password: t.target.password?.value,
    pins: t.pins,
    timeoutMs: t.timeoutMs,
    bearerOnUpgrade: t.target.url.startsWith("wss://"),
  });
}

async function withClient<T>(
  flags: Flags,
  cmd: Command,
  path: CallPath,
  fn: (c: GatewayClient, t: ClientTarget) => Promise<T>,
): Promise<T> {
  const { resolveClientTarget } = await import("../../client/target.ts");
  const t = resolveClientTarget(flags, configFlag(cmd), path);
  // Probes ask for read access only; calls ask for what a local operator has.
  const client = await openClient(
    t,
    path === "probe" ? ["operator.read"] : ["operator.admin", "operator.read", "operator.write"],
  );
  try {
    return await fn(client, t);
  } finally {
    await client.close();
  }
}

/** `health` and `status`: one request, timed, and the URL as it may be printed. */
async function probe(
  c: GatewayClient,
  t: ClientTarget,
  method: "health" | "status",
): Promise<{ payload: Record<string, unknown>; rttMs: number; shown: string }> {
  const t0 = performance.now();
  const payload = await c.request<Record<string, unknown>>(method, {}, { timeoutMs: t.timeoutMs });
  // Every URL printed is redacted: a token inside --url must not reach a terminal or a CI log.
  return { payload, rttMs: performance.now() - t0, shown: redactUrl(t.target.url) };
}

async function health(flags: Flags, cmd: Command): Promise<void> {
  await withClient(flags, cmd, "probe", async (c, t) => {
    const { payload, rttMs, shown } = await probe(c, t, "health");
    if (flags.json) printJson({ ok: true, url: shown, rttMs: round(rttMs), health: payload });
    else
      process.stdout.write(
        `ok  ${shown}  ${round(rttMs)} ms${typeof payload.version === "string" ? `  gateway ${payload.version}` : ""}${typeof payload.uptimeMs === "number" ? `  up ${fmtDuration(payload.uptimeMs)}` : ""}\n`,
      );
  });
}

async function status(flags: Flags, cmd: Command): Promise<void> {
  await withClient(flags, cmd, "probe", async (c, t) => {
    const { payload, rttMs, shown } = await probe(c, t, "status");
    const deep = {
      config: { source: t.config.source, path: t.config.path ?? null },
      mode: t.target.mode,
      target: { url: shown, source: t.target.urlSource },
      credential: {
        token: t.target.token ? { source: t.target.token.source } : null,
        password: t.target.password ? { source: t.target.password.source } : null,
      },
      tls: t.target.url.startsWith("wss://")
        ? {
            pinned: t.pins.length > 0,
            pins: t.pins,
            pinSource: t.pinSource ?? null,
            verified: t.pins.length > 0 ? "pin matched" : "CA verified",
          }
        : { pinned: false, note: "plaintext ws:// (loopback)" },
      rttMs: round(rttMs),
      connectMs: round(c.connectMs),
      server: { version: c.hello.server.version, protocol: c.hello.protocol, connId: c.hello.server.connId },
      auth: c.hello.auth,
      methods: c.hello.features.methods,
      events: c.hello.features.events,
    };
    if (flags.json) {
      printJson(
        flags.deep
          ? { ok: true, status: payload, deep }
          : { ok: true, url: shown, rttMs: round(rttMs), status: payload },
      );
      return;
    }
    const lines = [`ok  ${shown}  ${round(rttMs)} ms  gateway ${c.hello.server.version}`];
    if (typeof payload.bind === "string")
      lines.push(
        `bind ${payload.bind}  port ${String(payload.port)}  auth ${String((payload.auth as { mode?: string } | undefined)?.mode ?? "?")}`,
      );
    if (flags.deep) {
      lines.push(
        `config      ${deep.config.path ?? "(none)"} (${deep.config.source})`,
        `mode        ${deep.mode}`,
        `target      ${deep.target.url} (from ${deep.target.source})`,
        `credential  ${deep.credential.token ? `token from ${deep.credential.token.source}` : deep.credential.password ? `password from ${deep.credential.password.source}` : "none"}`,
        `tls         ${"pinned" in deep.tls && deep.tls.pinned ? `pinned (${deep.tls.pinSource}) and matched` : t.target.url.startsWith("wss://") ? "CA verified, not pinned" : "plaintext loopback"}`,
        `round trip  ${deep.rttMs} ms (connect ${deep.connectMs} ms)`,
        `server      ${deep.server.version}, protocol ${deep.server.protocol}`,
        `scopes      ${deep.auth.scopes.join(" ")}`,
        `methods     ${deep.methods.length}: ${deep.methods.slice(0, 12).join(" ")}${deep.methods.length > 12 ? " … (--json lists all)" : ""}`,
      );
    }
    process.stdout.write(lines.join("\n") + "\n");
  });
}

async function call(method: string, flags: Flags, cmd: Command): Promise<void> {
  let params: unknown = {};
  if (flags.params !== undefined) {
    try {
      params = JSON.parse(flags.params);
    } catch (e) {
      throw new LoopgateError(ErrorCodes.USAGE, `--params is not valid JSON: ${(e as Error).message}`, {
        hint: `e.g. --params '{"key":"value"}'`,
      });
    }
  }
  await withClient(flags, cmd, "compat", async (c, t) => {
    const payload = await c.request(method, params, {
      timeoutMs: t.timeoutMs,
      expectFinal: Boolean(flags.expectFinal),
    });
    if (flags.json) printJson(payload);
    else process.stdout.write((typeof payload === "string" ? payload : JSON.stringify(payload, null, 2)) + "\n");
  });
}

/**
 * `loopgate agent --message M`: runs one agent turn, printing the reply as
 * it streams (the `chat` delta events of this run) and exiting when it ends.
 */
async function agentTurn(flags: Flags, cmd: Command): Promise<void> {
  if (!flags.message)
    throw new LoopgateError(ErrorCodes.USAGE, "--message is required", {
      hint: 'e.g. loopgate agent --message "hello"',
    });
  const { randomUUID } = await import("node:crypto");
  await withClient({ ...flags, timeout: flags.timeout ?? "600000" }, cmd, "call", async (c, t) => {
    let runId: string | undefined;
    let printed = 0;
    const early: { runId: string; state: string; message?: { content?: { text?: string }[] } }[] = [];
    const onChat = (p: { runId: string; state: string; message?: { content?: { text?: string }[] } }) => {
      if (runId === undefined) return void early.push(p);
      if (p.runId !== runId || flags.json) return;
      const text = p.message?.content?.map((x) => x.text ?? "").join("") ?? "";
      if ((p.state === "delta" || p.state === "final") && text.length > printed) {
        process.stdout.write(text.slice(printed));
        printed = text.length;
      }
    };
    c.onEvent((e) => {
      if (e.event === "chat") onChat(e.payload as Parameters<typeof onChat>[0]);
    });
    const final = await c.request<{
      runId: string;
      status: string;
      error?: string;
      result?: { payloads?: { text?: string }[] };
    }>(
      "agent",
      { message: flags.message, sessionKey: flags.session ?? "main", idempotencyKey: randomUUID() },
      {
        timeoutMs: t.timeoutMs,
        expectFinal: true,
        onInterim: (p) => {
          runId = (p as { runId?: string }).runId;
          for (const e of early.splice(0)) onChat(e);
        },
      },
    );
    runId = final.runId;
    for (const p of early.splice(0)) onChat(p);
    if (flags.json) {
      printJson(final);
    } else {
      const text = final.result?.payloads?.map((p) => p.text ?? "").join("") ?? "";
      if (text.length > printed) process.stdout.write(text.slice(printed));
      process.stdout.write("\n");
    }
    if (final.status !== "ok")
      throw new LoopgateError(
        ErrorCodes.REQUEST_FAILED,
        `the agent turn ended with ${final.status}${final.error ? `: ${final.error}` : ""}`,
      );
  });
}

async function sendMessage(flags: Flags, cmd: Command): Promise<void> {
  if (!flags.to || !flags.message)
    throw new LoopgateError(ErrorCodes.USAGE, "--to and --message are required", {
      hint: 'e.g. loopgate send --to main --message "done"',
    });
  const { randomUUID } = await import("node:crypto");
  await withClient(flags, cmd, "call", async (c, t) => {
    const r = await c.request<{ messageId: string; channel: string }>(
      "send",
      { to: flags.to, message: flags.message, channel: flags.channel ?? "webchat", idempotencyKey: randomUUID() },
      { timeoutMs: t.timeoutMs },
    );
    if (flags.json) printJson(r);
    else process.stdout.write(`sent via ${r.channel}: ${r.messageId}\n`);
  });
}

/**
 * `loopgate dashboard`: the Control UI link for the current target, signed in.
 * Local: http://127.0.0.1:PORT/#token=… (a fragment never reaches a server or
 * its logs; the page stores it and clears the address bar). Through the relay:
 * https://HOST_LABEL.RELAY/?token=… (the host's own origin; exchanged at once
 * for an HttpOnly cookie), or https://RELAY/h/HOSTID/?token=… for a relay reached by IP.
 * This prints a secret on purpose, because you asked for it.
 */
async function dashboard(flags: Flags, cmd: Command): Promise<void> {
  const { resolveClientTarget } = await import("../../client/target.ts");
  const t = resolveClientTarget(flags, configFlag(cmd), "call");
  const u = new URL(t.target.url.replace(/^ws/, "http"));
  const token = t.target.token?.value;
  if (!u.pathname.endsWith("/")) u.pathname += "/";
  let link = u.toString();
  // Through a relay reached by name, browsers use the host's own origin (relay/core/host-origin.ts), not the shared /h/ path.
  const relayed = u.protocol === "https:" ? /^\/h\/([A-Za-z0-9_-]{43})\/$/.exec(u.pathname) : null;
  const { hostOrigin } = await import("../../../shared/host-label.ts");
  const own = relayed ? hostOrigin(relayed[1]!, u.toString()) : undefined;
  if (own) link = `${own}/`;
  if (token)
    link =
      u.protocol === "https:"
        ? `${link}?token=${encodeURIComponent(token)}`
        : `${link}#token=${encodeURIComponent(token)}`;
  if (flags.json) printJson({ ok: true, url: link, signedIn: Boolean(token) });
  else process.stdout.write(`${link}\n${token ? "" : "(no token found: the page will ask for one)\n"}`);
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function fmtDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

export function registerClientCommands(program: Command, gateway: Command): void {
  addTargetOptions(
    program
      .command("dashboard")
      .description("print the Control UI link, signed in (contains the token: do not share it)"),
  ).action(action(dashboard));
  for (const parent of [program, gateway]) {
    addTargetOptions(parent.command("agent").description("run one agent turn and print the reply as it streams"))
      .requiredOption("--message <text>", "what to ask")
      .option("--session <key>", "session key (default main)")
      .action(action(agentTurn));
    addTargetOptions(parent.command("send").description("deliver a message to a channel (webchat: a session's chat)"))
      .requiredOption("--to <target>", "where to: for webchat, a session key")
      .requiredOption("--message <text>", "the message")
      .option("--channel <name>", "channel (default webchat)")
      .action(action(sendMessage));
  }
  addTargetOptions(
    program.command("health").description("check that the gateway answers (exit 0 when healthy)"),
  ).action(action(health));
  addTargetOptions(
    program
      .command("status")
      .description(
        "gateway status; --deep adds where the target and credentials came from, TLS pin state, round trip, methods",
      ),
  )
    .option(
      "--deep",
      "report config source, target, credential source, TLS pin state, round trip, server version and methods",
    )
    .action(action(status));
  addTargetOptions(gateway.command("health").description("check that the gateway answers")).action(action(health));
  addTargetOptions(gateway.command("status").description("gateway status"))
    .option("--deep", "full report, as `loopgate status --deep`")
    .action(action(status));
  addTargetOptions(
    gateway
      .command("call")
      .description("call any gateway method and print its result")
      .argument("<method>", "method name, e.g. health"),
  )
    .option("--params <json>", "method params as JSON (default {})")
    .option("--expect-final", "for methods that answer 'accepted' first (agent), wait for the final result")
    .action(action(call));
}
