// loopgate Control UI and WebChat: plain JavaScript, no build step, served by
// the gateway on its own port and spoken over the gateway's protocol v4
// WebSocket at the same origin (directly, or through the relay at the host's own
// origin https://<label>.<relay>/ or under /h/HOSTID/).
// The token never stays in the address bar: a #token= fragment is read once,
// kept in this browser's storage for this origin and path, and removed.
// Through the relay the page needs no token at all: the relay's HttpOnly
// cookie authenticates the WebSocket and the gateway checks the same token.

const $ = (id) => document.getElementById(id);
const base = location.pathname.replace(/\/[^/]*$/, "");
const storageKey = `loopgate.token:${base || "/"}`;
const sessionKeyStore = `loopgate.session:${base || "/"}`;
// Through the relay: under /h/HOSTID/, or at the host's own origin https://<52-char label>.<relay>/.
const viaRelay = /^\/h\/[A-Za-z0-9_-]{43}$/.test(base) || (location.protocol === "https:" && /^[a-z2-7]{52}\./.test(location.hostname));

(function takeFragmentToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return;
  localStorage.setItem(storageKey, decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search);
})();

let ws;
let reqId = 0;
const pending = new Map();
let session = localStorage.getItem(sessionKeyStore) || "main";
let backoff = 500;
let waitingForLogin = false;
let activeRun = null;
const streaming = new Map(); // runId -> <li>

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
      f.ok ? p.resolve(f.payload) : p.reject(Object.assign(new Error(f.error?.message || "request failed"), { error: f.error }));
    } else if (f.type === "event") onEvent(f.event, f.payload);
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
      await Promise.all([refreshStatus(), refreshSessions(), loadHistory()]);
    } catch (e) {
      if (!viaRelay) localStorage.removeItem(storageKey);
      showLogin(e.message);
      ws.close(1000, "sign in");
    }
  } else if (event === "chat") onChat(payload);
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
  $("s-relay").textContent = !r?.enabled ? "disabled" : r.state ? `${r.state}${r.relay ? ` → ${new URL(r.relay.replace(/^wss:/, "https:")).host}` : ""}` : "enabled";
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
    b.textContent = s.key;
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
  session = key;
  localStorage.setItem(sessionKeyStore, key);
  refreshSessions().catch(() => {});
  loadHistory().catch(() => {});
}

function addMessage(role, text, extra) {
  const li = document.createElement("li");
  li.className = role;
  li.textContent = text;
  if (extra?.incomplete) li.title = "incomplete";
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

async function loadHistory() {
  $("chat-session").textContent = session;
  const h = await request("chat.history", { sessionKey: session, limit: 200 });
  $("messages").replaceChildren();
  streaming.clear();
  for (const m of h.messages) {
    const text = (m.content || []).map((c) => c.text || "").join("");
    const role = m.role === "toolCall" || m.role === "toolResult" ? "tool" : m.role;
    addMessage(role, role === "tool" ? `${m.role === "toolCall" ? "→" : "←"} ${text}` : text, m);
  }
  if (h.activeRun) {
    activeRun = h.activeRun.runId;
    const li = addMessage("assistant", h.activeRun.text);
    li.classList.add("streaming");
    streaming.set(activeRun, li);
    setBusy(true);
  } else setBusy(false);
}

function onChat(p) {
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
    li.textContent = text;
    li.classList.add("streaming");
    li.scrollIntoView({ block: "end" });
  } else if (p.state === "final") {
    li.textContent = text;
    li.classList.remove("streaming");
    done(p.runId);
  } else if (p.state === "error" || p.state === "aborted") {
    if (li) li.classList.remove("streaming");
    addMessage(p.state === "error" ? "error" : "system", p.state === "error" ? p.errorMessage || "error" : "stopped");
    done(p.runId);
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
  $("send").disabled = busy;
  $("abort").hidden = !busy;
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

$("abort").addEventListener("click", () => request("chat.abort", { sessionKey: session }).catch(() => {}));

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
