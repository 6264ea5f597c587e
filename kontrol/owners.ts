/**
 * Which user a kite id belongs to, remembered after the kite goes away.
 * Ids are visible to every user (`getKites`, watch events); without this a
 * user could register another user's id the moment its kite disconnects and
 * lock the owner out of it.
 *
 * @module
 */

interface Claim {
  username: string;
  /** The id is free for others after this (ms). */
  until: number;
}

/** Bounds of an {@linkcode IdOwners}. */
export interface IdOwnersOptions {
  /** How long an id stays its owner's after its kite last registered or left (ms). */
  retentionMs: number;
  /** Ids remembered at most, over all users; the longest unused go first. */
  maxIds: number;
  /** Ids remembered at most per user; that user's longest unused go first. */
  maxIdsPerUser: number;
}

/**
 * Binds each kite id to the first user that registered it, until
 * `retentionMs` after its kite last registered or left. Bounded per user,
 * so one user registering many ids only pushes out their own.
 */
export class IdOwners {
  readonly #options: IdOwnersOptions;
  /** Least recently claimed first. */
  readonly #byId = new Map<string, Claim>();
  /** Per user: ids least recently claimed first. */
  readonly #byUser = new Map<string, Set<string>>();

  /** Remembers nothing yet. */
  constructor(options: IdOwnersOptions) {
    this.#options = options;
  }

  /** Ids remembered. */
  get size(): number {
    return this.#byId.size;
  }

  /** The user holding `id` at `nowMs`, if any. */
  owner(id: string, nowMs: number): string | undefined {
    const claim = this.#byId.get(id);
    if (!claim) return undefined;
    if (claim.until > nowMs) return claim.username;
    this.#forget(id);
    return undefined;
  }

  /**
   * Binds `id` to `username` for another retention period. Call only when
   * {@linkcode IdOwners.owner} is `username` or nobody.
   */
  claim(id: string, username: string, nowMs: number): void {
    this.#forget(id);
    if (this.#options.retentionMs <= 0) return;
    this.#byId.set(id, { username, until: nowMs + this.#options.retentionMs });
    let ids = this.#byUser.get(username);
    if (!ids) this.#byUser.set(username, ids = new Set());
    ids.add(id);
    while (ids.size > this.#options.maxIdsPerUser) {
      this.#forget(ids.values().next().value!);
    }
    while (this.#byId.size > this.#options.maxIds) {
      this.#forget(this.#byId.keys().next().value!);
    }
  }

  #forget(id: string): void {
    const claim = this.#byId.get(id);
    if (!claim) return;
    this.#byId.delete(id);
    const ids = this.#byUser.get(claim.username);
    ids?.delete(id);
    if (ids?.size === 0) this.#byUser.delete(claim.username);
  }
}
