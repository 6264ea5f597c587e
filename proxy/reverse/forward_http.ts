/**
 * One caller's HTTP request carried to a kite and its answer back: the
 * SockJS XHR transports (`xhr`, `xhr_send`, `xhr_streaming`, `eventsource`,
 * `jsonp`…), `/info`, and anything else the kite serves under its URL.
 * The request body is read whole first, bounded by `maxBodyBytes` (kite
 * messages are bounded anyway); the answer streams through as the kite
 * writes it, so `xhr_streaming` and `eventsource` stay streams.
 *
 * @module
 */
import {
  bodyTooBigText,
  readBoundedBody,
} from "../../kite/transport/server/http_body.ts";
import { proxyError } from "./answers.ts";

/** Options for {@linkcode forwardHttp}. */
export interface HttpForwardOptions {
  /** The kite's URL for this request (path and query included). */
  backend: URL;
  /** What the caller is told the kite is, in errors (`kite <id>`). */
  name: string;
  /** Largest request body, bytes. */
  maxBodyBytes: number;
  /** The setting that holds `maxBodyBytes`, named in the 413. */
  maxBodySetting: string;
  /** A body that is not complete after this long is refused, ms. */
  timeoutMs: number;
  /** The caller's address, passed on as `X-Forwarded-For`. */
  forwardedFor: string;
  /** `http` or `https`: how the caller reached the proxy. */
  forwardedProto: string;
  /** Aborts the request when the kite leaves the proxy. */
  signal: AbortSignal;
  /** Counts forwarded bytes. */
  count(toKite: number, toCaller: number): void;
  /** Called once when the exchange is over (the answer's body too). */
  done(): void;
}

/** Headers that describe one hop, not the message (RFC 9110 §7.6.1). */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
];

/** Forwards the request; `502` naming the kite when it cannot be reached. */
export async function forwardHttp(
  request: Request,
  o: HttpForwardOptions,
): Promise<Response> {
  let answer: Response;
  try {
    answer = await exchange(request, o);
  } catch (err) {
    o.done();
    throw err;
  }
  if (!answer.body) {
    o.done();
    return answer;
  }
  return new Response(counted(answer.body, o), answer);
}

/** The kite's answer with its headers cleaned, its body not read yet. */
async function exchange(
  request: Request,
  o: HttpForwardOptions,
): Promise<Response> {
  let body: Uint8Array<ArrayBuffer> | undefined;
  if (request.body) {
    const read = await readBoundedBody(request, {
      limit: o.maxBodyBytes,
      timeoutMs: o.timeoutMs,
    });
    if (!read.ok) {
      return read.refusal === "tooBig"
        ? proxyError(
          413,
          bodyTooBigText(o.maxBodyBytes, o.maxBodySetting),
          true,
        )
        : proxyError(
          408,
          `request body not complete within ${o.timeoutMs} ms`,
          true,
        );
    }
    body = read.bytes as Uint8Array<ArrayBuffer>;
    o.count(body.length, 0);
  }
  const headers = withoutHopByHop(request.headers);
  headers.set("x-forwarded-for", o.forwardedFor);
  headers.set("x-forwarded-proto", o.forwardedProto);
  // Deno's fetch would decode a compressed answer and keep its header.
  headers.set("accept-encoding", "identity");
  let answer: Response;
  try {
    answer = await fetch(o.backend, {
      method: request.method,
      headers,
      body: request.method === "GET" || request.method === "HEAD"
        ? undefined
        : body,
      redirect: "manual",
      signal: AbortSignal.any([request.signal, o.signal]),
    });
  } catch (err) {
    if (o.signal.aborted) {
      return proxyError(404, `${o.name} left the proxy`);
    }
    return proxyError(
      502,
      `${o.name} cannot be reached: ${(err as Error).message}`,
    );
  }
  return new Response(answer.body, {
    status: answer.status,
    statusText: answer.statusText,
    headers: withoutHopByHop(answer.headers),
  });
}

/**
 * The answer's body as the kite writes it, counted; `done` once it ends,
 * fails, or the caller stops reading (an `xhr_streaming` left open).
 */
function counted(
  body: ReadableStream<Uint8Array>,
  o: HttpForwardOptions,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    o.done();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          return end();
        }
        o.count(0, value.length);
        controller.enqueue(value);
      } catch (err) {
        controller.error(err);
        end();
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason).catch(() => {});
    },
  });
}

function withoutHopByHop(from: Headers): Headers {
  const headers = new Headers(from);
  // Headers named in Connection are hop-by-hop too.
  for (const name of (from.get("connection") ?? "").split(",")) {
    if (name.trim()) headers.delete(name.trim());
  }
  for (const name of HOP_BY_HOP) headers.delete(name);
  return headers;
}
