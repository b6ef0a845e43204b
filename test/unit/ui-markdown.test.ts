/**
 * The Control UI's Markdown parser (agent/ui/markdown.js, plain browser
 * JavaScript): what it recognises, and that hostile replies never produce an
 * href other than absolute http(s). The browser suite checks the rendered
 * DOM in chromium.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";

type Inline = string | { t: string; text?: string; href?: string; c?: Inline[] };
type Block = {
  t: string;
  c?: Inline[] | Block[];
  text?: string;
  lang?: string;
  level?: number;
  start?: number;
  items?: Inline[][];
};
interface MarkdownModule {
  parseMarkdown(text: string): Block[];
  parseInline(text: string): Inline[];
  safeHref(raw: string): string | undefined;
}
// A browser module without type declarations: imported by a computed specifier.
const spec = new URL("../../agent/ui/markdown.js", import.meta.url).href;
const md = (await import(spec)) as MarkdownModule;

/** Every href anywhere in a parsed tree. */
function hrefs(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(hrefs);
  if (!node || typeof node !== "object") return [];
  const o = node as Record<string, unknown>;
  return [...(typeof o.href === "string" ? [o.href] : []), ...hrefs(o.c), ...hrefs(o.items)];
}

test("blocks: fences (closed or still streaming), headings, lists, quotes, paragraphs", () => {
  assert.deepEqual(md.parseMarkdown("```js\nconst a = '<b>';\n```\nafter"), [
    { t: "pre", lang: "js", text: "const a = '<b>';" },
    { t: "p", c: ["after"] },
  ]);
  assert.deepEqual(md.parseMarkdown("```\nstill streaming"), [{ t: "pre", lang: "", text: "still streaming" }]);
  assert.deepEqual(md.parseMarkdown("# Title\n\n- one\n- **two**\n\n3. c\n4. d\n\n> quoted\n\ntext\nmore"), [
    { t: "h", level: 1, c: ["Title"] },
    { t: "ul", start: 1, items: [["one"], [{ t: "strong", c: ["two"] }]] },
    { t: "ol", start: 3, items: [["c"], ["d"]] },
    { t: "quote", c: [{ t: "p", c: ["quoted"] }] },
    { t: "p", c: ["text", { t: "br" }, "more"] },
  ]);
});

test("inline: code, bold, italic, strikethrough, links, bare URLs without trailing punctuation", () => {
  assert.deepEqual(md.parseInline("use `a*b*c` and **bold** _it_ *em* ~~no~~ snake_case_name"), [
    "use ",
    { t: "code", text: "a*b*c" },
    " and ",
    { t: "strong", c: ["bold"] },
    " ",
    { t: "em", c: ["it"] },
    " ",
    { t: "em", c: ["em"] },
    " ",
    { t: "del", c: ["no"] },
    " snake_case_name",
  ]);
  assert.deepEqual(md.parseInline("see [docs](https://example.com/a_b) or https://example.org/x."), [
    "see ",
    { t: "a", href: "https://example.com/a_b", c: ["docs"] },
    " or ",
    { t: "a", href: "https://example.org/x", c: ["https://example.org/x"] },
    ".",
  ]);
});

test("hostile replies: HTML stays text, and only absolute http(s) URLs become links", () => {
  const hostile = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click]( javascript:alert(1) )",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "[x](//evil.example/)",
    "[x](/relative)",
    "<javascript:alert(1)>",
    "[x](vbscript:msgbox)",
    '[a](https://ok.example/"onmouseover="alert(1))',
    "```html\n<script>alert(1)</script>\n```",
  ].join("\n\n");
  const tree = md.parseMarkdown(hostile);
  for (const h of hrefs(tree)) assert.match(h, /^https:\/\/ok\.example\//, `only the http(s) link is a link (${h})`);
  assert.equal(hrefs(tree).length, 1);
  assert.deepEqual(tree[0], { t: "p", c: ["<script>alert(1)</script>"] });
  assert.deepEqual(tree[2], { t: "p", c: ["[click](javascript:alert(1))"] });
  assert.equal(md.safeHref("javascript:alert(1)"), undefined);
  assert.equal(md.safeHref("https://example.com/"), "https://example.com/");
});

test("property: whatever the reply, every href is an absolute http(s) URL and parsing ends", () => {
  const pieces = [
    "[",
    "]",
    "(",
    ")",
    "<",
    ">",
    "`",
    "``",
    "```",
    "*",
    "**",
    "_",
    "~~",
    "#",
    "- ",
    "1. ",
    "> ",
    "\n",
    "\n\n",
    " ",
    "a",
    "javascript:",
    "JAVASCRIPT:",
    "data:",
    "vbscript:",
    "//",
    "http://",
    "https://",
    "h.example",
    '"',
    "'",
    "&#106;",
    "%6A",
    "\t",
    "\u0000",
  ];
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 60 }), (parts) => {
      for (const h of hrefs(md.parseMarkdown(parts.join("")))) {
        const u = new URL(h);
        assert.ok(u.protocol === "http:" || u.protocol === "https:", h);
        assert.equal(md.safeHref(h), h);
      }
    }),
    { numRuns: 2000 },
  );
});
