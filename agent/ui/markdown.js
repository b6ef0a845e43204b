// A small Markdown renderer for assistant replies, safe by construction:
// the text is parsed into a tree of plain objects (parseMarkdown), and the
// tree is built with createElement and text nodes only (renderMarkdown).
// Nothing is ever parsed as HTML, so a reply's "<script>" or "<img onerror>"
// stays text; the only attribute taken from a reply is a link's href, and
// only an absolute http(s) URL becomes one (javascript:, data:, relative
// and protocol-relative URLs stay text). Links open in a new tab with
// rel="noopener noreferrer". Supported: code fences, inline code, bold,
// italic, strikethrough, links and bare http(s) URLs, headings, lists,
// block quotes, rules and paragraphs. An unclosed fence (a reply still
// streaming) renders as code so far.

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^ {0,3}[-*+]\s+(.*)$/;
const ORDERED = /^ {0,3}(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const MAX_DEPTH = 8;

/** An absolute http(s) URL as a normalised href, or undefined. */
export function safeHref(raw) {
  if (typeof raw !== "string" || !/^https?:\/\//i.test(raw.trim())) return undefined;
  try {
    const u = new URL(raw.trim());
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : undefined;
  } catch {
    return undefined;
  }
}

/** Parses Markdown into blocks: {t:"p"|"h"|"pre"|"ul"|"ol"|"quote"|"hr", …}. */
export function parseMarkdown(text, depth = 0) {
  const lines = String(text ?? "")
    .replace(/\r\n?/g, "\n")
    .split("\n");
  const blocks = [];
  let para = [];
  const flush = () => {
    if (para.length) blocks.push({ t: "p", c: parseInline(para.join("\n"), depth) });
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if ((m = FENCE.exec(line)) && !(m[1][0] === "`" && m[2].includes("`"))) {
      flush();
      const lang = /^\s*([\w+#.-]{0,32})/.exec(m[2])[1];
      const close = new RegExp(`^ {0,3}${m[1][0] === "`" ? "`" : "~"}{${m[1].length},}\\s*$`);
      const body = [];
      while (++i < lines.length && !close.test(lines[i])) body.push(lines[i]);
      blocks.push({ t: "pre", lang, text: body.join("\n") });
    } else if (line.trim() === "") flush();
    else if (RULE.test(line)) {
      flush();
      blocks.push({ t: "hr" });
    } else if ((m = HEADING.exec(line))) {
      flush();
      blocks.push({ t: "h", level: m[1].length, c: parseInline(m[2], depth) });
    } else if (QUOTE.test(line) && depth < MAX_DEPTH) {
      flush();
      const body = [];
      for (; i < lines.length && (m = QUOTE.exec(lines[i])); i++) body.push(m[1]);
      i--;
      blocks.push({ t: "quote", c: parseMarkdown(body.join("\n"), depth + 1) });
    } else if (BULLET.test(line) || ORDERED.test(line)) {
      flush();
      const ordered = !BULLET.test(line);
      const item = ordered ? ORDERED : BULLET;
      const list = { t: ordered ? "ol" : "ul", start: ordered ? Number(ORDERED.exec(line)[1]) : 1, items: [] };
      let current;
      for (; i < lines.length; i++) {
        const l = lines[i];
        if ((m = item.exec(l))) {
          current = [ordered ? m[2] : m[1]];
          list.items.push(current);
        } else if (l.trim() !== "" && /^\s+\S/.test(l) && current) current.push(l.trim());
        else break;
      }
      i--;
      list.items = list.items.map((parts) => parseInline(parts.join("\n"), depth));
      blocks.push(list);
    } else para.push(line);
  }
  flush();
  return blocks;
}

// Inline constructs, tried in this order where their first character appears.
// Each is a sticky regex; `open` is how it starts. An emphasis that starts
// but finds no closer cannot find one from any later position either, so it
// is not tried again in this text: parsing stays linear however hostile the
// reply (a streaming reply is parsed again on every delta).
const EMPHASIS = [
  { t: "strong", open: /\*\*(?=\S)/y, full: /\*\*(?=\S)([\s\S]*?\S)\*\*/y },
  { t: "strong", open: /(?<!\w)__(?=\S)/y, full: /(?<!\w)__(?=\S)([\s\S]*?\S)__(?!\w)/y },
  { t: "em", open: /\*(?=[^\s*])/y, full: /\*(?=[^\s*])([\s\S]*?[^\s*])\*/y },
  { t: "em", open: /(?<!\w)_(?=[^\s_])/y, full: /(?<!\w)_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)/y },
  { t: "del", open: /~~(?=\S)/y, full: /~~(?=\S)([\s\S]*?\S)~~/y },
];
const LINK = /\[([^[\]\n]{1,1000})\]\(\s*<?([^()\s<>[\]]{1,2048})>?\s*\)/y;
const AUTOLINK = /<(https?:\/\/[^\s<>]{1,2048})>/iy;
const BARE_URL = /https?:\/\/[^\s<>"'`]{1,2048}/iy;
const SPECIAL = /[`[<*_~\nhH]/g;

function at(re, s, i) {
  re.lastIndex = i;
  return re.exec(s);
}

/** Parses inline Markdown into strings and {t:"code"|"a"|"strong"|"em"|"del"|"br", …}. */
export function parseInline(text, depth = 0) {
  const s = String(text ?? "");
  if (depth > MAX_DEPTH) return s ? [s] : [];
  const out = [];
  const addText = (t) => {
    if (!t) return;
    if (typeof out[out.length - 1] === "string") out[out.length - 1] += t;
    else out.push(t);
  };
  const dead = new Set(); // emphasis kinds, and code-span run lengths, that found no closer
  const special = new RegExp(SPECIAL.source, "g");
  let i = 0;
  while (i < s.length) {
    special.lastIndex = i;
    const found = special.exec(s);
    if (!found) break;
    addText(s.slice(i, found.index));
    i = found.index;
    const c = s[i];
    let m;
    if (c === "\n") {
      out.push({ t: "br" });
      i++;
    } else if (c === "`") {
      let k = 1;
      while (s[i + k] === "`") k++;
      const close = dead.has(`code${k}`) ? null : at(new RegExp(`(?<!\`)\`{${k}}(?!\`)`, "g"), s, i + k);
      if (close) {
        const body = s.slice(i + k, close.index);
        out.push({
          t: "code",
          text: body.length > 2 && body.startsWith(" ") && body.endsWith(" ") ? body.slice(1, -1) : body,
        });
        i = close.index + k;
      } else {
        dead.add(`code${k}`);
        addText(s.slice(i, i + k));
        i += k;
      }
    } else if (c === "[" && (m = at(LINK, s, i))) {
      const href = safeHref(m[2]);
      if (href)
        out.push({ t: "a", href, c: parseInline(m[1], depth + 1).filter((n) => typeof n === "string" || n.t !== "a") });
      else addText(m[0]); // not a link we open: shown as written
      i += m[0].length;
    } else if (c === "<" && (m = at(AUTOLINK, s, i))) {
      const href = safeHref(m[1]);
      if (href) out.push({ t: "a", href, c: [m[1]] });
      else addText(m[0]);
      i += m[0].length;
    } else if ((c === "h" || c === "H") && (m = at(BARE_URL, s, i))) {
      // Trailing punctuation ends the sentence, not the URL.
      const url = m[0].replace(/[.,;:!?)\]}*_~]+$/, "");
      const href = safeHref(url);
      if (href) out.push({ t: "a", href, c: [url] });
      else addText(url);
      i += url.length;
    } else {
      let matched = false;
      for (let e = 0; e < EMPHASIS.length && !matched; e++) {
        const em = EMPHASIS[e];
        if (dead.has(e) || !at(em.open, s, i)) continue;
        if ((m = at(em.full, s, i))) {
          out.push({ t: em.t, c: parseInline(m[1], depth + 1) });
          i += m[0].length;
          matched = true;
        } else dead.add(e);
      }
      if (!matched) {
        addText(c);
        i++;
      }
    }
  }
  addText(s.slice(i));
  return out;
}

const INLINE_TAGS = { code: "code", strong: "strong", em: "em", del: "del" };

function buildInline(doc, nodes, parent) {
  for (const n of nodes) {
    if (typeof n === "string") parent.append(doc.createTextNode(n));
    else if (n.t === "br") parent.append(doc.createElement("br"));
    else if (n.t === "code") {
      const el = doc.createElement("code");
      el.textContent = n.text;
      parent.append(el);
    } else if (n.t === "a") {
      const href = safeHref(n.href);
      const el = doc.createElement(href ? "a" : "span");
      if (href) {
        el.setAttribute("href", href);
        el.setAttribute("rel", "noopener noreferrer nofollow");
        el.setAttribute("target", "_blank");
      }
      buildInline(doc, n.c, el);
      parent.append(el);
    } else if (INLINE_TAGS[n.t]) {
      const el = doc.createElement(INLINE_TAGS[n.t]);
      buildInline(doc, n.c, el);
      parent.append(el);
    }
  }
}

function buildBlocks(doc, blocks, parent) {
  for (const b of blocks) {
    let el;
    if (b.t === "p") buildInline(doc, b.c, (el = doc.createElement("p")));
    else if (b.t === "h") buildInline(doc, b.c, (el = doc.createElement(`h${Math.min(b.level + 2, 6)}`)));
    else if (b.t === "hr") el = doc.createElement("hr");
    else if (b.t === "pre") {
      el = doc.createElement("pre");
      const code = doc.createElement("code");
      if (b.lang) code.className = `language-${b.lang.replace(/[^\w+#.-]/g, "")}`;
      code.textContent = b.text;
      el.append(code);
    } else if (b.t === "ul" || b.t === "ol") {
      el = doc.createElement(b.t);
      if (b.t === "ol" && b.start !== 1) el.setAttribute("start", String(b.start));
      for (const item of b.items) {
        const li = doc.createElement("li");
        buildInline(doc, item, li);
        el.append(li);
      }
    } else if (b.t === "quote") buildBlocks(doc, b.c, (el = doc.createElement("blockquote")));
    if (el) parent.append(el);
  }
}

/** Renders Markdown as a DocumentFragment of safe elements. */
export function renderMarkdown(text, doc = document) {
  const frag = doc.createDocumentFragment();
  buildBlocks(doc, parseMarkdown(text), frag);
  return frag;
}
