/**
 * The few DOM types the dashboard uses, declared here instead of with
 * `/// <reference lib="dom" />`, which would put the DOM's types into every
 * file `deno check` reads with it (and break Deno's own stream types).
 *
 * @module
 */

/** An element, as far as the dashboard touches it. */
export interface Element {
  className: string;
  textContent: string | null;
  hidden: boolean;
  readonly dataset: Record<string, string | undefined>;
  readonly style: { height: string; transform: string };
  scrollTop: number;
  readonly clientHeight: number;
  value: string;
  onclick: ((e: Event) => void) | null;
  onsubmit: ((e: Event) => void) | null;
  append(...nodes: Element[]): void;
  replaceChildren(...nodes: Element[]): void;
  removeAttribute(name: string): void;
  closest(selector: string): Element | null;
  addEventListener(
    type: string,
    fn: (e: Event) => void,
    options?: { passive?: boolean },
  ): void;
}

/** The document's two calls the dashboard makes. */
interface Document {
  getElementById(id: string): Element | null;
  createElement(tag: string): Element;
}

interface Page {
  document: Document;
  history: { replaceState(data: null, unused: string, url: string): void };
  requestAnimationFrame(fn: () => void): number;
}

const page = globalThis as unknown as Page;

/** The page's document. */
export const document: Document = page.document;

/** Runs `fn` before the next paint. */
export function requestAnimationFrame(fn: () => void): number {
  return page.requestAnimationFrame(fn);
}

/** Replaces the address bar's URL without loading it. */
export function replaceURL(url: string): void {
  page.history.replaceState(null, "", url);
}

/** The element with `id` (the page's markup has them all). */
export function byId(id: string): Element {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the dashboard page has no #${id}`);
  return el;
}
