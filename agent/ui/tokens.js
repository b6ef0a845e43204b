// The client-token panel, for operator.admin sessions only: list the tokens
// this host minted (never the tokens themselves), mint one for a device
// (shown once, with its sign-in link and a QR code to scan with a phone),
// and revoke one. Backed by loopgate.tokens.list/create/revoke.

const $ = (id) => document.getElementById(id);

const ACCESS_LABEL = { "operator.read": "read", "operator.write": "write", "operator.admin": "admin" };

function fmtDate(ms) {
  return new Date(ms).toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** Wires the panel; `request(method, params)` is the page's gateway call. */
export function createTokenPanel(request) {
  let relayConfigured = false;

  async function refresh() {
    const r = await request("loopgate.tokens.list", {});
    relayConfigured = Boolean(r.relay?.configured);
    const note = $("tokens-relay");
    if (!relayConfigured) {
      note.textContent = `No relay is configured, so there is nowhere to use a client token yet. To set one up: ${r.relay?.hint ?? "set gateway.relay.url"}.`;
      note.dataset.state = "missing";
    } else if (!r.relay.enabled) {
      note.textContent = `Relay ${r.relay.url} is configured but the link is off (gateway.relay.enabled): tokens work once it is on.`;
      note.dataset.state = "off";
    } else {
      note.textContent = `Clients reach this host through ${r.relay.url}.`;
      note.dataset.state = "ok";
    }
    $("token-mint").disabled = !relayConfigured;
    const tbody = $("tokens");
    tbody.replaceChildren();
    if (r.tokens.length === 0) {
      const tr = document.createElement("tr");
      const td = cell("No client tokens yet.", "muted");
      td.colSpan = 6;
      tr.append(td);
      tbody.append(tr);
    }
    for (const t of [...r.tokens].reverse()) {
      const tr = document.createElement("tr");
      tr.dataset.id = t.id;
      tr.dataset.state = t.state;
      tr.append(
        cell(t.name ?? "–"),
        cell(t.id.slice(0, 8), "mono"),
        cell(t.scopes.map((s) => ACCESS_LABEL[s] ?? s).join(" + ")),
        cell(fmtDate(t.expiresAt)),
        cell(t.state, `state state-${t.state}`),
      );
      const td = document.createElement("td");
      if (t.state === "active") {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "revoke";
        b.textContent = "Revoke";
        b.onclick = () => confirmRevoke(b, t);
        td.append(b);
      }
      tr.append(td);
      tbody.append(tr);
    }
  }

  // Two clicks instead of confirm(): works the same on phones and in tests.
  function confirmRevoke(button, t) {
    if (button.dataset.armed !== "1") {
      button.dataset.armed = "1";
      button.textContent = "Confirm revoke";
      setTimeout(() => {
        if (button.isConnected && button.dataset.armed === "1") {
          button.dataset.armed = "";
          button.textContent = "Revoke";
        }
      }, 4000);
      return;
    }
    button.disabled = true;
    request("loopgate.tokens.revoke", { id: t.id })
      .then(refresh)
      .catch((e) => showError(e));
  }

  function showError(e) {
    $("token-error").textContent = e?.error?.details?.hint
      ? `${e.message} (${e.error.details.hint})`
      : (e?.message ?? String(e));
  }

  function showOnce(t) {
    $("token-once").hidden = false;
    $("token-once-name").textContent = t.name ?? t.id.slice(0, 8);
    $("token-link").value = t.link;
    // The SVG comes from the gateway (uqr); as an <img> it can draw but never run anything.
    $("token-qr").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(t.qrSvg)}`;
    $("token-qr-once").hidden = !t.exchange;
    $("token-qr").alt = t.exchange ? "QR code of a single-use sign-in link (60 s)" : "QR code of the sign-in link";
    $("token-config").textContent = JSON.stringify(t.clientConfig, null, 2);
    $("token-once").scrollIntoView({ block: "nearest" });
  }

  function hideOnce() {
    $("token-once").hidden = true;
    $("token-link").value = "";
    $("token-qr").removeAttribute("src");
    $("token-qr-once").hidden = true;
    $("token-config").textContent = "";
  }

  $("token-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("token-error").textContent = "";
    hideOnce();
    $("token-mint").disabled = true;
    try {
      const name = $("token-name").value.trim();
      const t = await request("loopgate.tokens.create", {
        ...(name ? { name } : {}),
        access: $("token-access").value,
        ttl: $("token-ttl").value,
      });
      $("token-name").value = "";
      showOnce(t);
      await refresh();
    } catch (e) {
      showError(e);
    } finally {
      $("token-mint").disabled = !relayConfigured;
    }
  });
  $("token-done").addEventListener("click", hideOnce);
  $("token-copy").addEventListener("click", () => {
    navigator.clipboard?.writeText($("token-link").value).then(
      () => ($("token-copy").textContent = "Copied"),
      () => $("token-link").select(),
    );
  });

  return {
    /** Shows the panel for admins, hides it (and anything shown once) for everyone else. */
    async show(isAdmin) {
      $("tokens-card").hidden = !isAdmin;
      if (!isAdmin) {
        hideOnce();
        return;
      }
      await refresh().catch(showError);
    },
  };
}
