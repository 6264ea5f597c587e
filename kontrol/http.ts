/**
 * Kontrol's HTTP endpoints: `POST /register` and `GET /heartbeat?id=`
 * (docs/protocol.md §8.3).
 *
 * @module
 */
import { contractsFromArgs } from "./contracts.ts";
import { KiteError } from "../kite/errors.ts";
import {
  bodyTooBigText,
  clip,
  readBoundedBody,
} from "../kite/transport/server/http_body.ts";
import {
  identityFromJSON,
  identityProblem,
  KONTROL_UNAVAILABLE,
} from "../kite/protocol.ts";
import { pairForKontrolKey } from "./handlers.ts";
import { checkFieldLengths, checkLength } from "./limits.ts";
import type { KontrolServices } from "./services.ts";

/**
 * Largest `/register` body: a kite.key, an identity and a URL take a few
 * KiB; the rest would be an attacker's.
 */
export const REGISTER_BODY_LIMIT = 64 * 1024;

/**
 * Go's http.Error shape: text/plain, `{"err":"…"}` plus a newline. `close`
 * drops the connection (a refused body may still be on it).
 */
function fail(status: number, message: string, close = false): Response {
  const headers: Record<string, string> = {
    "content-type": "text/plain; charset=utf-8",
  };
  if (close) headers.connection = "close";
  // Messages may quote what the peer sent: never echo it unbounded.
  return new Response(JSON.stringify({ err: clip(message, 500) }) + "\n", {
    status,
    headers,
  });
}

/** The peer's IP address, when the server knows it. */
function remoteHost(info?: Deno.ServeHandlerInfo): string | undefined {
  const addr = info?.remoteAddr as Deno.NetAddr | undefined;
  return addr?.hostname;
}

/** Mounts `/register` and `/heartbeat` on Kontrol's kite. */
export function addHttpRoutes(kontrol: KontrolServices): void {
  const kite = kontrol.kite;

  kite.handleHTTP("/register", async (req, info) => {
    if (req.method !== "POST") return fail(405, "method not allowed");
    // The credentials travel inside the body (Go's protocol), so the size
    // is the check that comes before reading it.
    const read = await readBoundedBody(req, {
      limit: REGISTER_BODY_LIMIT,
      timeoutMs: kite.config.timeoutMs,
    });
    if (!read.ok) {
      return read.refusal === "tooBig"
        ? fail(413, bodyTooBigText(REGISTER_BODY_LIMIT, "/register"), true)
        : fail(408, "request body not complete in time", true);
    }
    let body: Record<string, unknown>;
    try {
      const parsed = JSON.parse(new TextDecoder().decode(read.bytes));
      if (
        parsed === null || typeof parsed !== "object" || Array.isArray(parsed)
      ) throw new Error("not an object");
      body = parsed;
    } catch (err) {
      return fail(400, `invalid JSON body: ${clip((err as Error).message)}`);
    }
    const auth = body.auth as { type?: unknown; key?: unknown } | undefined;
    if (!auth || auth.type !== "kiteKey" || typeof auth.key !== "string") {
      return fail(
        400,
        `Unexpected authentication type: ${clip(String(auth?.type ?? "none"))}`,
      );
    }
    const url = typeof body.url === "string" ? body.url : "";
    if (!url) return fail(400, "empty url");
    const limits = kontrol.limits;
    try {
      // Before the url is echoed, parsed or stored.
      checkLength("url", url, limits.maxUrlLength);
    } catch (err) {
      return fail(400, (err as Error).message);
    }
    if (!URL.canParse(url)) return fail(400, `invalid url: ${clip(url)}`);
    let outcome;
    try {
      outcome = await kite.authenticator.authenticate({
        type: "kiteKey",
        key: auth.key,
      });
    } catch (err) {
      return fail(401, (err as Error).message);
    }
    const identity = identityFromJSON(body.kite);
    if (!identity) return fail(400, "kite is missing or malformed");
    identity.username = outcome.username;
    try {
      checkFieldLengths(identity, limits.maxFieldLength);
    } catch (err) {
      return fail(400, (err as Error).message);
    }
    const problem = identityProblem(identity);
    if (problem) return fail(400, problem);
    let contracts;
    try {
      contracts = contractsFromArgs(body.contracts, limits.maxFieldLength);
    } catch (err) {
      return fail(400, clip((err as Error).message));
    }
    let resolved;
    try {
      resolved = await pairForKontrolKey(kontrol, outcome.claims?.kontrolKey);
    } catch (err) {
      return fail(400, (err as Error).message);
    }
    try {
      // A Kontrol that cannot use its storage sends the kite elsewhere.
      kontrol.requireHealthy();
      await kontrol.registry.register(
        {
          kite: identity,
          url,
          keyId: resolved.pair.id,
          ...(contracts && { contracts }),
        },
        undefined,
        { address: remoteHost(info) },
      );
    } catch (err) {
      // Another user's id is a refusal, not a storage failure.
      if (err instanceof KiteError) {
        const status = err.message.startsWith(KONTROL_UNAVAILABLE)
          ? 503
          : err.type === "requestLimitError"
          ? 429
          : 403;
        return fail(status, err.message);
      }
      return fail(500, `storage: ${(err as Error).message}`);
    }
    const result: Record<string, unknown> = {
      url,
      heartbeatInterval: kontrol.registry.timing.heartbeatIntervalMs / 1000,
    };
    if (resolved.rotated) {
      result.publicKey = resolved.pair.public;
      result.kiteKey = await kontrol.signKiteKey(identity.username);
    }
    return new Response(JSON.stringify(result) + "\n", {
      headers: { "content-type": "application/json" },
    });
  });

  kite.handleHTTP("/heartbeat", (req, info) => {
    const id = new URL(req.url).searchParams.get("id");
    if (!id) return new Response("query id is empty\n", { status: 400 });
    // A heartbeat this Kontrol cannot persist is not answered "pong": the
    // kite registers again, is refused with 503, and moves to the next.
    const alive = kontrol.healthy &&
      kontrol.registry.httpPing(id, remoteHost(info));
    return new Response(alive ? "pong" : "registeragain");
  });
}
