// highlight.js with its common languages: a chunk of its own, loaded the first time a message has a code block.
import hljs from 'highlight.js/lib/common';

/** Highlights one code element in place (highlight.js escapes the text it reads from textContent). */
export function highlight(el: HTMLElement): void {
  if (el.dataset.highlighted) return;
  const lang = /language-([\w+#-]+)/.exec(el.className)?.[1];
  if (lang && !hljs.getLanguage(lang)) return;
  hljs.highlightElement(el);
}
