/**
 * What the Kontrol dashboard shows, without the DOM: the watched kites
 * grouped by username/environment/name/version, changed by batches of
 * watch events and flattened into rows for a virtualized list. A batch
 * costs its events plus one walk over the groups; rows are rebuilt once
 * per batch (one animation frame), never per event.
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

/** A row of the flattened list. */
export type Row = GroupRow | KiteRow;

/** The group a kite belongs to: `username/environment/name/version`. */
export function groupKey(kite: KiteIdentity): string {
  return `${kite.username}/${kite.environment}/${kite.name}/${kite.version}`;
}

/** The watched kites, grouped, and the rows that show them. */
export class KiteTable {
  /** Groups by key, each a map of its kites by id (insertion order). */
  readonly #groups = new Map<string, Map<string, DashboardKite>>();
  /** Which group each kite id is in. */
  readonly #groupOf = new Map<string, string>();
  readonly #collapsed = new Set<string>();
  #sortedKeys: string[] = [];
  #keysDirty = false;
  #rows: Row[] = [];
  #rowsDirty = false;

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
    return key === undefined ? undefined : this.#groups.get(key)?.get(id);
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
      group = new Map();
      this.#groups.set(key, group);
      this.#keysDirty = true;
    }
    group.set(id, {
      kite: event.kite,
      url: event.url ?? "",
      token: event.token,
      since: now,
      before,
    });
    this.#groupOf.set(id, key);
    this.#rowsDirty = true;
  }

  #remove(id: string): void {
    const key = this.#groupOf.get(id);
    if (key === undefined) return;
    this.#groupOf.delete(id);
    const group = this.#groups.get(key)!;
    group.delete(id);
    if (group.size === 0) {
      this.#groups.delete(key);
      this.#keysDirty = true;
    }
    this.#rowsDirty = true;
  }

  /** Hides or shows a group's kites. */
  toggle(key: string): void {
    if (!this.#collapsed.delete(key)) this.#collapsed.add(key);
    this.#rowsDirty = true;
  }

  /** Groups in name order, each header followed by its kites (unless collapsed). */
  rows(): readonly Row[] {
    if (!this.#rowsDirty) return this.#rows;
    if (this.#keysDirty) {
      this.#sortedKeys = [...this.#groups.keys()].sort();
      this.#keysDirty = false;
    }
    const rows: Row[] = [];
    for (const key of this.#sortedKeys) {
      const group = this.#groups.get(key)!;
      const collapsed = this.#collapsed.has(key);
      rows.push({ type: "group", key, count: group.size, collapsed });
      if (collapsed) continue;
      for (const entry of group.values()) rows.push({ type: "kite", entry });
    }
    this.#rows = rows;
    this.#rowsDirty = false;
    return rows;
  }
}
