/**
 * The optional part of a stored kite every adapter writes and reads the
 * same way: its contracts (docs/protocol.md §8.2, Deno kites only).
 *
 * @module
 */
import type { ContractRef } from "../kite/protocol.ts";

/**
 * `{ contracts }` holding a copy of the well-formed entries of `value`, or
 * `{}` when there are none, so a record without contracts stays without
 * the key (what Go's Kontrol and older rows hold). Values read back from a
 * shared engine may come from other writers, hence the check.
 */
export function contractsPart(
  value: unknown,
): { contracts?: ContractRef[] } {
  if (!Array.isArray(value) || value.length === 0) return {};
  const contracts: ContractRef[] = [];
  for (const c of value) {
    if (typeof c?.name === "string" && typeof c?.version === "string") {
      contracts.push({ name: c.name, version: c.version });
    }
  }
  return contracts.length > 0 ? { contracts } : {};
}
