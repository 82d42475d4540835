import DOMPurify from 'dompurify';
import { Marked, type TokenizerAndRendererExtension } from 'marked';
import { memo, useEffect, useMemo, useRef } from 'react';

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Math: `$$…$$` (a block) and `$…$` (inline) become placeholders holding the TeX as escaped text; KaTeX (loaded lazily,
 * only when a message has math) renders them after the sanitized HTML is in the page.
 */
const mathBlock: TokenizerAndRendererExtension = {
  name: 'mathBlock',
  level: 'block',
  start: (src) => src.indexOf('$$'),
  tokenizer(src) {
    const m = /^\$\$([\s\S]+?)\$\$(?:\n|$)/.exec(src);
    return m?.[1] ? { type: 'mathBlock', raw: m[0], text: m[1].trim() } : undefined;
  },
  renderer: (t) => `<div class="math math-block">${escapeHtml(String(t.text))}</div>\n`,
};
const mathInline: TokenizerAndRendererExtension = {
  name: 'mathInline',
  level: 'inline',
  start: (src) => src.indexOf('$'),
  tokenizer(src) {
    const m = /^\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)/.exec(src);
    return m?.[1] ? { type: 'mathInline', raw: m[0], text: m[1] } : undefined;
  },
  renderer: (t) => `<span class="math math-inline">${escapeHtml(String(t.text))}</span>`,
};

/**
 * Markdown of the model (untrusted): raw HTML in it is shown as text, never parsed, and the HTML marked makes is
 * sanitized by DOMPurify as a second line of defence (no script, no event handler attributes, no javascript: URLs).
 */
const marked = new Marked({
  gfm: true,
  breaks: false,
  extensions: [mathBlock, mathInline],
  renderer: {
    html(token) {
      return escapeHtml(token.text);
    },
  },
});

// Links from the model open in a new tab, without access to this page.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

export function renderMarkdown(text: string): string {
  const html = marked.parse(text, { async: false });
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true } });
}

/**
 * After the sanitized HTML is in the page: each code block gets a bar (its language, a Copy button) and is
 * highlighted by highlight.js; math is rendered by KaTeX. Both libraries load on first use (own chunks), and only
 * work on text the sanitizer let through (they build their markup from textContent, escaping it).
 */
function enhance(root: HTMLElement, final: boolean): void {
  for (const pre of root.querySelectorAll('pre')) {
    if (pre.parentElement?.classList.contains('code-block')) continue;
    const code = pre.querySelector('code');
    const lang = /language-([\w+#-]+)/.exec(code?.className ?? '')?.[1] ?? '';
    const wrap = document.createElement('div');
    wrap.className = 'code-block';
    const bar = document.createElement('div');
    bar.className = 'code-bar';
    const label = document.createElement('span');
    label.className = 'code-lang';
    label.textContent = lang || 'text';
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.className = 'small code-copy';
    copy.textContent = 'Copy code';
    copy.addEventListener('click', () => {
      navigator.clipboard.writeText(code?.textContent ?? pre.textContent).then(
        () => (copy.textContent = 'Copied'),
        () => (copy.textContent = 'Copy failed'),
      );
    });
    bar.append(label, copy);
    pre.replaceWith(wrap);
    wrap.append(bar, pre);
  }
  // While streaming, highlighting and math wait for the durable message (a half-written block would flicker).
  if (!final) return;
  const codes = [...root.querySelectorAll<HTMLElement>('pre code')];
  if (codes.length > 0) {
    void import('./highlight').then(({ highlight }) => {
      for (const c of codes) highlight(c);
    });
  }
  const maths = [...root.querySelectorAll<HTMLElement>('.math')];
  if (maths.length > 0) {
    void import('./math').then(({ renderMath }) => {
      for (const m of maths) renderMath(m);
    });
  }
}

/** Renders Markdown text as sanitized HTML; `final` (a durable message) also highlights code and renders math. */
export const Markdown = memo(function Markdown({ text, final = true }: { text: string; final?: boolean }) {
  const html = useMemo(() => renderMarkdown(text), [text]);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (ref.current) enhance(ref.current, final);
  }, [html, final]);
  // Sanitized above: raw HTML escaped, then DOMPurify.
  return <div className="markdown" ref={ref} dangerouslySetInnerHTML={{ __html: html }} />;
});
