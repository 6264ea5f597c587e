/**
 * What the Kontrol dashboard shows, without the DOM: the watched kites
 * grouped by username/environment/name/version, changed by batches of
 * watch events, and read as rows by a virtualized list. A batch costs its
 * events; reading the rows in sight costs the number of groups plus the
 * rows read (a group's kites are put in an array again only when that
 * group changed), so a frame's work does not grow with the kites shown.
 *
 * @module
 */
import type { KiteEvent, KiteIdentity } from "../../kite/protocol.ts";

/** One kite on the dashboard. */
export interface DashboardKite {
  /** Its identity, as Kontrol reported it. */
  kite: KiteIdentity;
  /** The URL it registered. */
  url: string;
  /** A token for calling it (from the watch), when Kontrol sent one. */
  token?: string;
  /** When the dashboard learned of it (ms since the epoch). */
  since: number;
  /** It was registered already when the dashboard opened: `since` is an upper bound. */
  before: boolean;
}

/** A group header row. */
export interface GroupRow {
  /** Row kind. */
  type: "group";
  /** `username/environment/name/version`. */
  key: string;
  /** Kites in the group. */
  count: number;
  /** Whether its kites are hidden. */
  collapsed: boolean;
}

/** A kite row. */
export interface KiteRow {
  /** Row kind. */
  type: "kite";
  /** The kite. */
  entry: DashboardKite;
}

/** A row of the list. */
export type Row = GroupRow | KiteRow;

/** The group a kite belongs to: `username/environment/name/version`. */
export function groupKey(kite: KiteIdentity): string {
  return `${kite.username}/${kite.environment}/${kite.name}/${kite.version}`;
}

interface Group {
  /** Its kites by id, in the order they came. */
  kites: Map<string, DashboardKite>;
  /** `kites` as an array; undefined after a change. */
  list: DashboardKite[] | undefined;
  collapsed: boolean;
}

/** The watched kites, grouped, and the rows that show them. */
export class KiteTable {
  readonly #groups = new Map<string, Group>();
  /** Which group each kite id is in. */
  readonly #groupOf = new Map<string, string>();
  /** Groups folded by the user (kept across the group emptying). */
  readonly #collapsed = new Set<string>();
  #sortedKeys: string[] = [];
  #keysDirty = false;
  #rowCount = 0;
  #countDirty = false;

  /** Kites shown. */
  get size(): number {
    return this.#groupOf.size;
  }

  /** Groups shown. */
  get groups(): number {
    return this.#groups.size;
  }

  /** The kite with `id`, if shown. */
  get(id: string): DashboardKite | undefined {
    const key = this.#groupOf.get(id);
    return key === undefined ? undefined : this.#groups.get(key)?.kites.get(id);
  }

  /**
   * Applies a batch of watch events seen at `now`; `before` marks kites
   * that were registered before the dashboard opened (the first answer).
   */
  apply(events: Iterable<KiteEvent>, now: number, before = false): void {
    for (const event of events) {
      if (event.action === "REGISTER") this.#add(event, now, before);
      else this.#remove(event.kite.id);
    }
  }

  #add(event: KiteEvent, now: number, before: boolean): void {
    const id = event.kite.id;
    this.#remove(id);
    const key = groupKey(event.kite);
    let group = this.#groups.get(key);
    if (!group) {
      group = {
        kites: new Map(),
        list: undefined,
        collapsed: this.#collapsed.has(key),
      };
      this.#groups.set(key, group);
      this.#keysDirty = true;
    }
    group.kites.set(id, {
      kite: event.kite,
      url: event.url ?? "",
      token: event.token,
      since: now,
      before,
    });
    group.list = undefined;
    this.#groupOf.set(id, key);
    this.#countDirty = true;
  }

  #remove(id: string): void {
    const key = this.#groupOf.get(id);
    if (key === undefined) return;
    this.#groupOf.delete(id);
    const group = this.#groups.get(key)!;
    group.kites.delete(id);
    group.list = undefined;
    if (group.kites.size === 0) {
      this.#groups.delete(key);
      this.#keysDirty = true;
    }
    this.#countDirty = true;
  }

  /** Hides or shows a group's kites. */
  toggle(key: string): void {
    if (!this.#collapsed.delete(key)) this.#collapsed.add(key);
    const group = this.#groups.get(key);
    if (group) group.collapsed = this.#collapsed.has(key);
    this.#countDirty = true;
  }

  #keys(): string[] {
    if (this.#keysDirty) {
      this.#sortedKeys = [...this.#groups.keys()].sort();
      this.#keysDirty = false;
    }
    return this.#sortedKeys;
  }

  /** Rows in all: a header per group, then its kites unless collapsed. */
  get rowCount(): number {
    if (this.#countDirty) {
      let n = 0;
      for (const g of this.#groups.values()) {
        n += 1 + (g.collapsed ? 0 : g.kites.size);
      }
      this.#rowCount = n;
      this.#countDirty = false;
    }
    return this.#rowCount;
  }

  /** Rows `first` (inclusive) to `last` (exclusive), groups in name order. */
  rows(first = 0, last = this.rowCount): Row[] {
    const rows: Row[] = [];
    let at = 0;
    for (const key of this.#keys()) {
      if (at >= last) break;
      const group = this.#groups.get(key)!;
      const span = 1 + (group.collapsed ? 0 : group.kites.size);
      if (at + span <= first) {
        at += span;
        continue;
      }
      if (at >= first) {
        rows.push({
          type: "group",
          key,
          count: group.kites.size,
          collapsed: group.collapsed,
        });
      }
      if (!group.collapsed) {
        const list = group.list ??= [...group.kites.values()];
        const from = Math.max(0, first - at - 1);
        const to = Math.min(list.length, last - at - 1);
        for (let i = from; i < to; i++) {
          rows.push({ type: "kite", entry: list[i] });
        }
      }
      at += span;
    }
    return rows;
  }
}
