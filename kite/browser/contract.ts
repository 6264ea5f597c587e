/**
 * Typed contracts for web pages: the browser entry of `@kite/core/contract`
 * (`deno task build:browser` writes it to `dist/kite.contract.js`). A page
 * defines or imports a contract and calls a kite through it with
 * `typed(client, contract)` on a client of the browser build; `z` comes
 * along so a page without a bundler can write schemas. Serving a contract
 * (`implement`) stays on Deno kites.
 *
 * @example
 * ```ts ignore
 * import { Kite } from "./kite.browser.js";
 * import { defineContract, dialTyped, z } from "./kite.contract.js";
 *
 * const math = defineContract({
 *   name: "math",
 *   version: "1.0.0",
 *   methods: { square: { args: [z.number()], result: z.number() } },
 * });
 * const client = new Kite("page", "1.0.0").newClient("http://127.0.0.1:3636/kite");
 * const m = await dialTyped(client, math); // fails here on an incompatible version
 * console.log(await m.square(4)); // 16
 * ```
 *
 * @module
 */
export { callbackArgsOf, defineContract, fn } from "../contract/contract.ts";
export {
  checkContract,
  dialTyped,
  incompatibility,
  typed,
} from "../contract/typed_client.ts";
export {
  CALLBACK_KEYWORD,
  DESCRIBE_METHOD,
  jsonSchema,
} from "../contract/describe.ts";
export { z } from "zod";
