// KaTeX and its styles: a chunk of their own, loaded the first time a message has math.
import katex from 'katex';
import 'katex/dist/katex.min.css';

/** Renders one math placeholder (its text is the TeX) in place; bad TeX is shown in red, not thrown. */
export function renderMath(el: HTMLElement): void {
  if (el.dataset.rendered) return;
  const tex = el.textContent;
  katex.render(tex, el, { displayMode: el.classList.contains('math-block'), throwOnError: false, trust: false });
  el.dataset.rendered = '1';
  el.setAttribute('aria-label', tex);
}
