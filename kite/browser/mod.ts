/**
 * Kite for web pages: `@kite/core/browser`. A page is a kite — it dials
 * kites over the browser's WebSocket (SockJS or raw) or xhr-polling
 * (fetch), calls their methods with callbacks, and serves its own methods
 * to the kites it dialed over the same connection (without credentials,
 * docs/protocol.md §6.9). Registered through the tunnel proxy
 * (`registerToTunnel`), it serves callers that found it in Kontrol and
 * checks their credentials as a Deno kite does (kite/auth/verify.ts),
 * except on methods with `.disableAuthentication()`. Nothing here touches
 * `Deno`; `deno task build:browser` bundles it into one ES module.
 *
 * Over `raw-websocket` to a Deno kite, the calls a page makes in one tick
 * go in one WebSocket frame and their replies come back in one (batch
 * frames, docs/protocol.md §1.8); other servers ignore the offer.
 *
 * @example
 * ```ts ignore
 * import { Kite } from "@kite/core/browser";
 *
 * const kite = new Kite("page", "1.0.0", { auth: { type: "token", key: token } });
 * kite.handle("alert", (r) => alert(r.args.one().string()));
 * const math = kite.newClient("http://127.0.0.1:3636/kite", { transport: "raw-websocket" });
 * await math.dial();
 * console.log(await math.tell("square", 4)); // 16
 * ```
 *
 * @module
 */

export { BrowserKite, BrowserKite as Kite } from "./kite.ts";
export { Client } from "../client.ts";
export { KiteError } from "../errors.ts";
export { KontrolClient } from "../kontrol_client.ts";

export type { BrowserKiteOptions, BrowserKontrolOptions } from "./kite.ts";
export type {
  CancelWatch,
  FoundKite,
  KontrolHost,
  KontrolToken,
  WatchKitesOptions,
} from "../kontrol_client.ts";
export type { KiteEvent, KontrolQuery } from "../protocol.ts";
export type { CallOptions, ClientOptions } from "../client.ts";
export type { Handler } from "../method.ts";
export type { Method } from "../method.ts";
export type { Request } from "../request.ts";
export type { Auth, KiteIdentity } from "../protocol.ts";
export type { KiteConfig } from "../config.ts";
export type { ClientTransport } from "../transport/client/dialer.ts";
export type { KiteTunnel, RegisterToTunnelOptions } from "../tunnel_client.ts";
export type { KiteErrorType } from "../errors.ts";
