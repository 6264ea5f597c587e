/**
 * Kontrol's HTTP endpoints: `POST /register` and `GET /heartbeat?id=`
 * (docs/protocol.md §8.3).
 *
 * @module
 */
import { KiteError } from "../kite/errors.ts";
import { identityFromJSON, identityProblem } from "../kite/protocol.ts";
import { pairForKontrolKey } from "./handlers.ts";
import { checkFieldLengths, checkLength } from "./limits.ts";
import type { Kontrol } from "./kontrol.ts";

/** Go's http.Error shape: text/plain, `{"err":"…"}` plus a newline. */
function fail(status: number, message: string): Response {
  return new Response(JSON.stringify({ err: message }) + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** The peer's IP address, when the server knows it. */
function remoteHost(info?: Deno.ServeHandlerInfo): string | undefined {
  const addr = info?.remoteAddr as Deno.NetAddr | undefined;
  return addr?.hostname;
}

/** Mounts `/register` and `/heartbeat` on Kontrol's kite. */
export function addHttpRoutes(kontrol: Kontrol): void {
  const kite = kontrol.kite;

  kite.handleHTTP("/register", async (req, info) => {
    if (req.method !== "POST") return fail(405, "method not allowed");
    let body: Record<string, unknown>;
    try {
      const parsed = await req.json();
      if (
        parsed === null || typeof parsed !== "object" || Array.isArray(parsed)
      ) throw new Error("not an object");
      body = parsed;
    } catch (err) {
      return fail(400, `invalid JSON body: ${(err as Error).message}`);
    }
    const auth = body.auth as { type?: unknown; key?: unknown } | undefined;
    if (!auth || auth.type !== "kiteKey" || typeof auth.key !== "string") {
      return fail(
        400,
        `Unexpected authentication type: ${auth?.type ?? "none"}`,
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
    if (!URL.canParse(url)) return fail(400, `invalid url: ${url}`);
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
    let resolved;
    try {
      resolved = await pairForKontrolKey(kontrol, outcome.claims?.kontrolKey);
    } catch (err) {
      return fail(400, (err as Error).message);
    }
    try {
      await kontrol.registry.register(
        {
          kite: identity,
          url,
          keyId: resolved.pair.id,
        },
        undefined,
        { address: remoteHost(info) },
      );
    } catch (err) {
      // Another user's id is a refusal, not a storage failure.
      if (err instanceof KiteError) {
        return fail(err.type === "requestLimitError" ? 429 : 403, err.message);
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
    const alive = kontrol.registry.httpPing(id, remoteHost(info));
    return new Response(alive ? "pong" : "registeragain");
  });
}
