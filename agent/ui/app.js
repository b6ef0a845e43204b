// loopgate Control UI and WebChat: plain JavaScript, no build step, served by
// the gateway on its own port and spoken over the gateway's protocol v4
// WebSocket at the same origin (directly, or through the relay at the host's own
// origin https://<label>.<relay>/ or under /h/HOSTID/).
// The token never stays in the address bar: a #token= fragment is read once,
// kept in this browser's storage for this origin and path, and removed.
// Through the relay the page needs no token at all: the relay's HttpOnly
// cookie authenticates the WebSocket and the gateway checks the same token.
// Assistant replies are rendered as Markdown by ./markdown.js (never as HTML);
// tool calls show as collapsible blocks; an admin gets the token panel (./tokens.js).

import { renderMarkdown } from "./markdown.js";
import { createTokenPanel } from "./tokens.js";

const $ = (id) => document.getElementById(id);
const base = location.pathname.replace(/\/[^/]*$/, "");
const storageKey = `loopgate.token:${base || "/"}`;
const sessionKeyStore = `loopgate.session:${base || "/"}`;
// Through the relay: under /h/HOSTID/, or at the host's own origin https://<52-char label>.<relay>/.
const viaRelay =
  /^\/h\/[A-Za-z0-9_-]{43}$/.test(base) ||
  (location.protocol === "https:" && /^[a-z2-7]{52}\./.test(location.hostname));

(function takeFragmentToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return;
  localStorage.setItem(storageKey, decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search);
})();

let ws;
let reqId = 0;
const pending = new Map();
// Session keys are OpenClaw's canonical agent:<agentId>:<key>; the page shows the short form.
const canonicalKey = (k) => (k.startsWith("agent:") ? k : `agent:main:${k}`);
const keyLabel = (k) => k.replace(/^agent:main:/, "");
let session = canonicalKey(localStorage.getItem(sessionKeyStore) || "main");
let backoff = 500;
let waitingForLogin = false;
let activeRun = null;
const streaming = new Map(); // runId -> <li>
const toolBlocks = new Map(); // toolCallId -> tool <li> (live turns)
const runSessions = new Map(); // runId -> sessionKey, learned from chat events and our own sends
const tokenPanel = createTokenPanel((method, params) => request(method, params));

function setConn(state, text) {
  const el = $("conn");
  el.dataset.state = state;
  el.textContent = text || state;
}

function request(method, params) {
  const id = `ui${++reqId}`;
  ws.send(JSON.stringify({ type: "req", id, method, params }));
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

function connect() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${base || "/"}`;
  setConn("connecting", "connecting…");
  ws = new WebSocket(url);
  ws.onmessage = (ev) => {
    let f;
    try {
      f = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (f.type === "res") {
      const p = pending.get(f.id);
      if (!p) return;
      if (f.ok && f.payload && f.payload.status === "accepted") return;
      pending.delete(f.id);
      f.ok
        ? p.resolve(f.payload)
        : p.reject(Object.assign(new Error(f.error?.message || "request failed"), { error: f.error }));
    } else if (f.type === "event") onEvent(f.event, f.payload).catch((e) => console.error("event handler failed", e));
  };
  ws.onclose = (ev) => {
    for (const p of pending.values()) p.reject(new Error("connection closed"));
    pending.clear();
    if (waitingForLogin) {
      setConn("disconnected", "sign in");
      return;
    }
    if (ev.code === 1008 && /unauthori|token/i.test(ev.reason)) {
      setConn("unauthorized", "not authorized");
      showLogin("The gateway refused the token.");
      return;
    }
    setConn("disconnected", `disconnected (${ev.code}) – retrying`);
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
}

async function onEvent(event, payload) {
  if (event === "connect.challenge") {
    const token = localStorage.getItem(storageKey);
    if (!token && !viaRelay) {
      showLogin();
      ws.close(1000, "no token");
      return;
    }
    try {
      const hello = await request("connect", {
        minProtocol: 4,
        maxProtocol: 4,
        client: { id: "openclaw-control-ui", version: "loopgate-ui", platform: "web", mode: "webchat" },
        role: "operator",
        scopes: ["operator.admin", "operator.read", "operator.write"],
        auth: token ? { token } : {},
      });
      backoff = 500;
      $("login").hidden = true;
      setConn("connected", viaRelay ? "connected via relay" : "connected");
      $("s-version").textContent = hello.server?.version ?? "?";
      const scopes = hello.auth?.scopes ?? [];
      const admin = scopes.includes("operator.admin");
      setReadOnly(!admin && !scopes.includes("operator.write"));
      await Promise.all([refreshStatus(), refreshSessions(), loadHistory(), tokenPanel.show(admin)]);
    } catch (e) {
      if (!viaRelay) localStorage.removeItem(storageKey);
      showLogin(e.message);
      ws.close(1000, "sign in");
    }
  } else if (event === "chat") onChat(payload);
  else if (event === "agent") onAgent(payload);
  else if (event === "tick") refreshStatus().catch(() => {});
}

function showLogin(message) {
  waitingForLogin = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

function fmtUptime(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

async function refreshStatus() {
  const s = await request("status", {});
  $("s-uptime").textContent = fmtUptime(s.uptimeMs);
  $("s-clients").textContent = String(s.connections?.ready ?? "?");
  $("s-model").textContent = s.agent?.provider ?? "not configured";
  const r = s.relay;
  $("s-relay").textContent = !r?.enabled
    ? "disabled"
    : r.state
      ? `${r.state}${r.relay ? ` → ${new URL(r.relay.replace(/^wss:/, "https:")).host}` : ""}`
      : "enabled";
}

async function refreshSessions() {
  const { sessions } = await request("sessions.list", { limit: 50 });
  const ul = $("sessions");
  ul.replaceChildren();
  const keys = sessions.map((s) => s.key);
  if (!keys.includes(session)) sessions.unshift({ key: session, lastMessage: "" });
  for (const s of sessions) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = keyLabel(s.key);
    if (s.key === session) b.setAttribute("aria-current", "true");
    const small = document.createElement("small");
    small.textContent = s.lastMessage || "";
    b.append(small);
    b.onclick = () => switchSession(s.key);
    li.append(b);
    ul.append(li);
  }
}

function switchSession(key) {
  key = canonicalKey(key);
  session = key;
  localStorage.setItem(sessionKeyStore, key);
  refreshSessions().catch(() => {});
  loadHistory().catch(() => {});
}

function addMessage(role, text, extra) {
  const li = document.createElement("li");
  li.className = role;
  if (role === "assistant") setAssistantText(li, text);
  else li.textContent = text;
  if (extra?.incomplete) {
    li.classList.add("incomplete");
    li.title = "incomplete";
  }
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

/** Assistant text as Markdown (safe: see markdown.js); re-rendered whole on every delta. */
function setAssistantText(li, text) {
  const body = document.createElement("div");
  body.className = "md";
  body.append(renderMarkdown(text));
  li.replaceChildren(body);
}

function prettyArgs(args) {
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return String(args ?? "");
  }
}

/** A tool call as a collapsible block: name and state in the summary, arguments and result inside. */
function addToolBlock(name, args) {
  const li = document.createElement("li");
  li.className = "tool";
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  const title = document.createElement("span");
  title.className = "tool-name";
  title.textContent = name || "tool";
  const state = document.createElement("span");
  state.className = "tool-state";
  state.textContent = "running…";
  summary.append("tool ", title, " ", state);
  const argsPre = document.createElement("pre");
  argsPre.className = "tool-args";
  argsPre.textContent = prettyArgs(args);
  // The result and its label appear when the result does.
  const result = document.createElement("div");
  result.className = "tool-result-box";
  result.hidden = true;
  const resultPre = document.createElement("pre");
  resultPre.className = "tool-result";
  result.append(label("result"), resultPre);
  details.append(summary, label("arguments"), argsPre, result);
  li.append(details);
  li.dataset.state = "running";
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function label(text) {
  const el = document.createElement("div");
  el.className = "tool-label";
  el.textContent = text;
  return el;
}

function setToolResult(li, ok, result) {
  li.dataset.state = ok === false ? "failed" : "done";
  li.querySelector(".tool-state").textContent = ok === false ? "failed" : "done";
  li.querySelector(".tool-result").textContent = String(result ?? "");
  li.querySelector(".tool-result-box").hidden = false;
}

/** The text of a history message, and for tool calls its name and arguments (OpenClaw's content parts, or loopgate's "name(args)" text). */
function messageText(m) {
  return (m.content || []).map((c) => (typeof c?.text === "string" ? c.text : "")).join("");
}

function toolCallOf(m) {
  const part = (m.content || []).find((c) => c && (c.type === "toolCall" || c.type === "tool_use"));
  if (part)
    return {
      name: part.name ?? m.toolName,
      args: typeof part.arguments === "string" ? part.arguments : JSON.stringify(part.arguments ?? part.input ?? {}),
    };
  const text = messageText(m);
  const name = m.toolName ?? /^([\w.-]+)\(/.exec(text)?.[1] ?? "tool";
  const args = text.startsWith(`${name}(`) && text.endsWith(")") ? text.slice(name.length + 1, -1) : text;
  return { name, args };
}

async function loadHistory() {
  $("chat-session").textContent = keyLabel(session);
  const h = await request("chat.history", { sessionKey: session, limit: 200 });
  $("messages").replaceChildren();
  streaming.clear();
  toolBlocks.clear();
  const openCalls = []; // tool blocks waiting for their result, in order
  const callParts = (m) => (m.content || []).filter((c) => c && (c.type === "toolCall" || c.type === "tool_use"));
  for (const m of h.messages) {
    if (m.role === "toolCall") {
      const { name, args } = toolCallOf(m);
      openCalls.push(addToolBlock(name, args));
    } else if (m.role === "assistant" && callParts(m).length > 0) {
      // OpenClaw's transcript shape: tool calls are parts of an assistant message.
      if (messageText(m) !== "") addMessage("assistant", messageText(m), m);
      for (const part of callParts(m)) {
        const { name, args } = toolCallOf({ ...m, content: [part] });
        const li = addToolBlock(name, args);
        li.dataset.callId = String(part.id ?? "");
        openCalls.push(li);
      }
    } else if (m.role === "toolResult") {
      const byId = openCalls.findIndex(
        (li) => m.toolCallId !== undefined && li.dataset.callId === String(m.toolCallId),
      );
      const i =
        byId >= 0
          ? byId
          : openCalls.findIndex(
              (li) =>
                li.querySelector(".tool-name").textContent ===
                (m.toolName ?? li.querySelector(".tool-name").textContent),
            );
      const li = i >= 0 ? openCalls.splice(i, 1)[0] : addToolBlock(m.toolName ?? "tool", "");
      setToolResult(li, m.ok ?? m.isError !== true, messageText(m));
    } else if (m.role === "system" && /abort/i.test(messageText(m))) addMessage("system", "stopped");
    else addMessage(m.role, messageText(m), m);
  }
  for (const li of openCalls) setToolResult(li, false, "(no result: the turn ended first)");
  if (h.activeRun) {
    activeRun = h.activeRun.runId;
    runSessions.set(activeRun, session);
    const li = addMessage("assistant", h.activeRun.text);
    li.classList.add("streaming");
    streaming.set(activeRun, li);
    setBusy(true);
  } else setBusy(false);
}

function onChat(p) {
  if (p.runId && p.sessionKey) runSessions.set(p.runId, p.sessionKey);
  if (p.sessionKey !== session) {
    refreshSessions().catch(() => {});
    return;
  }
  let li = streaming.get(p.runId);
  const text = (p.message?.content || []).map((c) => c.text || "").join("");
  if (!li && (p.state === "delta" || p.state === "final")) {
    li = addMessage("assistant", "");
    streaming.set(p.runId, li);
  }
  if (p.state === "delta") {
    setAssistantText(li, text);
    li.classList.add("streaming");
    li.scrollIntoView({ block: "end" });
  } else if (p.state === "final") {
    setAssistantText(li, text);
    li.classList.remove("streaming");
    done(p.runId);
  } else if (p.state === "error" || p.state === "aborted") {
    if (li) {
      li.classList.remove("streaming");
      if (p.state === "aborted") li.classList.add("incomplete");
    }
    addMessage(p.state === "error" ? "error" : "system", p.state === "error" ? p.errorMessage || "error" : "stopped");
    done(p.runId);
  }
}

/** Agent events carry tool calls as they happen (stream "tool", phase start/result). */
function onAgent(p) {
  if (p?.stream !== "tool" || !p.data) return;
  if (runSessions.get(p.runId) !== session) return;
  const d = p.data;
  const id = String(d.toolCallId ?? `${p.runId}:${d.name}`);
  if (d.phase === "start") {
    // A tool call that follows text of the same turn ends that text's bubble.
    const li = streaming.get(p.runId);
    if (li) {
      li.classList.remove("streaming");
      streaming.delete(p.runId);
    }
    toolBlocks.set(id, addToolBlock(d.name, d.args));
  } else if (d.phase === "result") {
    const li = toolBlocks.get(id) ?? addToolBlock(d.name, "");
    setToolResult(li, d.ok, d.result);
    toolBlocks.delete(id);
  }
}

function done(runId) {
  streaming.delete(runId);
  if (runId === activeRun) {
    activeRun = null;
    setBusy(false);
  }
  refreshSessions().catch(() => {});
}

function setBusy(busy) {
  $("send").disabled = busy || readOnly;
  $("abort").hidden = !busy || readOnly;
  $("abort").disabled = false;
  $("abort").textContent = "Stop";
}

let readOnly = false;
/** A read-only token may watch, not chat. */
function setReadOnly(ro) {
  readOnly = ro;
  $("input").disabled = ro;
  $("input").placeholder = ro ? "This token is read-only." : "Message the agent…";
  $("send").disabled = ro || Boolean(activeRun);
}

$("composer").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("input").value.trim();
  if (!text || activeRun) return;
  $("input").value = "";
  addMessage("user", text);
  setBusy(true);
  try {
    const r = await request("chat.send", { sessionKey: session, message: text, idempotencyKey: crypto.randomUUID() });
    activeRun = r.runId;
    runSessions.set(r.runId, session);
  } catch (e) {
    addMessage("error", e.message);
    setBusy(false);
  }
});

$("input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) {
    ev.preventDefault();
    $("composer").requestSubmit();
  }
});

// Stop: abort the session's running turn; the "aborted" chat event then ends the bubble and says "stopped".
$("abort").addEventListener("click", async () => {
  $("abort").disabled = true;
  $("abort").textContent = "Stopping…";
  try {
    const r = await request("chat.abort", { sessionKey: session, ...(activeRun ? { runId: activeRun } : {}) });
    if (!r?.aborted && activeRun) done(activeRun); // it had already ended
  } catch (e) {
    addMessage("error", `could not stop: ${e.message}`);
    setBusy(Boolean(activeRun));
  }
});

$("new-session").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = $("new-key").value.trim();
  if (key) switchSession(key);
  $("new-key").value = "";
});

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  localStorage.setItem(storageKey, $("token").value.trim());
  $("token").value = "";
  $("login").hidden = true;
  waitingForLogin = false;
  if (ws.readyState === WebSocket.OPEN) ws.close(1000, "reconnect");
  else connect();
});

connect();
