/**
 * Names metrics and spans give what has no name of its own, shared by
 * the call path (`serve/dispatch.ts`) and the metrics without pulling
 * the metrics registry into the browser build.
 *
 * @module
 */

/** The `method` label of calls of a method the kite does not have. */
export const UNKNOWN_METHOD = "unknown";
