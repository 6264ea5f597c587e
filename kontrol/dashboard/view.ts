/**
 * The dashboard's list: a virtualized view of {@linkcode KiteTable}'s rows.
 * Only the rows in sight (plus a few) are read and exist as elements,
 * reused as the list scrolls, so 10,000 kites cost what 40 do. Every text comes from the
 * network and is set with `textContent`, never parsed as HTML.
 *
 * @module
 */
import { document, type Element, requestAnimationFrame } from "./dom.ts";
import type { DashboardKite, KiteTable, Row } from "./model.ts";

/** Height of one row in pixels (the CSS says the same). */
export const ROW_HEIGHT = 26;
/** Rows rendered beyond each edge of the visible window. */
const OVERSCAN = 8;

/** What a row element shows now, so unchanged rows are not touched. */
interface Slot {
  el: Element;
  row: Row | undefined;
}

/** Formats a time of day. */
export function clockTime(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

/** One line about a kite: hostname, region, URL, since. */
function kiteLine(entry: DashboardKite): string {
  const k = entry.kite;
  const since = entry.before
    ? `before ${clockTime(entry.since)}`
    : `since ${clockTime(entry.since)}`;
  return `${k.id.slice(0, 8)} · ${k.hostname || "?"} · ${
    k.region || "-"
  } · ${entry.url} · ${since}`;
}

/** The virtualized list of groups and kites. */
export class KiteList {
  readonly #scroller: Element;
  readonly #spacer: Element;
  readonly #table: KiteTable;
  readonly #slots: Slot[] = [];
  #selected: string | undefined;
  #scheduled = false;

  /**
   * Renders into `scroller` (a fixed-height element that scrolls);
   * `onSelect` gets the kite clicked.
   */
  constructor(
    scroller: Element,
    table: KiteTable,
    onSelect: (entry: DashboardKite) => void,
  ) {
    this.#scroller = scroller;
    this.#table = table;
    this.#spacer = document.createElement("div");
    this.#spacer.className = "spacer";
    scroller.append(this.#spacer);
    scroller.addEventListener("scroll", () => this.schedule(), {
      passive: true,
    });
    globalThis.addEventListener("resize", () => this.schedule());
    scroller.addEventListener("click", (e) => {
      const el = (e.target as unknown as Element).closest(".row");
      const slot = this.#slots.find((s) => s.el === el);
      const row = slot?.row;
      if (!row) return;
      if (row.type === "group") {
        this.#table.toggle(row.key);
        this.schedule();
      } else {
        this.#selected = row.entry.kite.id;
        onSelect(row.entry);
        this.render(true);
      }
    });
  }

  /** Renders on the next animation frame (once, however often called). */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    requestAnimationFrame(() => {
      this.#scheduled = false;
      this.render();
    });
  }

  /** Renders the rows in sight now; `force` redraws rows that did not change. */
  render(force = false): void {
    const total = this.#table.rowCount;
    this.#spacer.style.height = `${total * ROW_HEIGHT}px`;
    const top = this.#scroller.scrollTop;
    const height = this.#scroller.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(
      total,
      Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN,
    );
    const rows = this.#table.rows(first, last);
    const n = rows.length;
    while (this.#slots.length < n) {
      const el = document.createElement("div");
      el.className = "row";
      this.#spacer.append(el);
      this.#slots.push({ el, row: undefined });
    }
    for (let i = 0; i < this.#slots.length; i++) {
      const slot = this.#slots[i];
      const row = i < n ? rows[i] : undefined;
      if (row === undefined) {
        if (slot.row !== undefined) {
          slot.el.hidden = true;
          slot.row = undefined;
        }
        continue;
      }
      slot.el.style.transform = `translateY(${(first + i) * ROW_HEIGHT}px)`;
      if (!force && sameRow(slot.row, row)) continue;
      slot.row = row;
      this.#draw(slot.el, row);
    }
  }

  #draw(el: Element, row: Row): void {
    el.hidden = false;
    if (row.type === "group") {
      el.className = "row group";
      el.removeAttribute("data-id");
      el.dataset.group = row.key;
      el.textContent = `${
        row.collapsed ? "▸" : "▾"
      } ${row.key}  (${row.count})`;
      return;
    }
    const id = row.entry.kite.id;
    el.className = id === this.#selected ? "row kite selected" : "row kite";
    el.removeAttribute("data-group");
    el.dataset.id = id;
    el.textContent = kiteLine(row.entry);
  }
}

function sameRow(a: Row | undefined, b: Row): boolean {
  if (a === undefined || a.type !== b.type) return false;
  if (a.type === "kite") return a.entry === (b as typeof a).entry;
  const g = b as typeof a;
  return a.key === g.key && a.count === g.count && a.collapsed === g.collapsed;
}
