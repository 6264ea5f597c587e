/**
 * The dnode layer: messages, callback scrubbing and the callback table.
 * Knows nothing of transports or kites.
 *
 * @module
 */
export {
  decodeMessage,
  DnodeError,
  encodeMessage,
  encodeResultMessage,
  isCallbackId,
} from "./message.ts";
export { FUNCTION_PLACEHOLDER, scrub, unscrub } from "./scrub.ts";
export { CallbackTable } from "./callbacks.ts";
export type {
  CallbackPath,
  Callbacks,
  DecodeLimits,
  DnodeMessage,
} from "./message.ts";
export type { AnyFunction, RegisterFunction } from "./scrub.ts";
