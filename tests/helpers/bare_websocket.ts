/**
 * A WebSocket server side written by hand on a TCP listener, for tests
 * that must send what Deno's own server never would: frames replayed from
 * recordings, fragments, invalid UTF-8.
 *
 * @module
 */

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/**
 * Accepts one connection, reads the client's handshake and answers it
 * with the exact 101 sockjs-go sends (docs/protocol.md §1.2). Frames are up to the
 * caller.
 */
export async function acceptBareWebSocket(
  listener: Deno.Listener,
): Promise<Deno.Conn> {
  const conn = await listener.accept();
  const head = await readHead(conn);
  const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1];
  if (key === undefined) throw new Error(`no Sec-WebSocket-Key in ${head}`);
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + GUID),
  );
  const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
  const answer = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
    `Connection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
  await conn.write(new TextEncoder().encode(answer));
  return conn;
}

async function readHead(conn: Deno.Conn): Promise<string> {
  const buf = new Uint8Array(4096);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("eof before head end");
    head += new TextDecoder().decode(buf.subarray(0, n));
  }
  return head;
}

/** One unmasked server frame (RFC 6455 §5.2), payload under 64 KiB. */
export function serverFrame(
  payload: Uint8Array,
  { fin = true, opcode = 1 }: { fin?: boolean; opcode?: number } = {},
): Uint8Array {
  const first = (fin ? 0x80 : 0) | opcode;
  const header = payload.length < 126
    ? [first, payload.length]
    : [first, 126, payload.length >> 8, payload.length & 0xff];
  const out = new Uint8Array(header.length + payload.length);
  out.set(header);
  out.set(payload, header.length);
  return out;
}

/** A whole text message in one frame. */
export function textFrame(text: string): Uint8Array {
  return serverFrame(new TextEncoder().encode(text));
}
