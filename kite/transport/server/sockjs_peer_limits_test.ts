import assert from "node:assert/strict";
import { ManualClock } from "../../clock.ts";
import { AddressQuota, peerOf } from "./address_quota.ts";
import type { Session } from "../session.ts";
import { SockJsServer } from "./sockjs_server.ts";

function tcp(hostname: string, port = 40000): Deno.NetAddr {
  return { transport: "tcp", hostname, port };
}

function info(hostname: string): Deno.ServeHandlerInfo {
  return {
    remoteAddr: tcp(hostname),
    completed: Promise.resolve(),
  } as Deno.ServeHandlerInfo;
}

/** One XHR poll (or send) from `hostname`, answered without a socket. */
async function xhr(
  sockjs: SockJsServer,
  from: string,
  session: string,
  route = "xhr",
  body?: string,
): Promise<{ status: number; text: string }> {
  const request = new Request(`http://127.0.0.1/kite/000/${session}/${route}`, {
    method: "POST",
    body,
  });
  const response = await sockjs.handle(request, info(from))!;
  return { status: response.status, text: await response.text() };
}

function server(
  clock: ManualClock,
  sessions: Session[] = [],
  options: Record<string, number> = {},
): SockJsServer {
  return new SockJsServer({
    clock,
    heartbeatMs: 0,
    disconnectDelayMs: 1_000,
    maxXhrSessionsPerAddress: 2,
    maxConnectionsPerAddress: 3,
    idleSessionMs: 0,
    ...options,
    onSession: (session) => {
      sessions.push(session);
      return { onMessage: () => {}, onClose: () => {} };
    },
  });
}

Deno.test("peerOf() counts IPv4 by address and IPv6 by /64", () => {
  assert.equal(peerOf(tcp("10.1.2.3")), "10.1.2.3");
  assert.equal(peerOf(tcp("::ffff:10.1.2.3")), "10.1.2.3");
  assert.equal(
    peerOf(tcp("2001:db8:0:1::5")),
    peerOf(tcp("2001:0db8:0000:0001:ffff:1:2:3")),
  );
  assert.notEqual(
    peerOf(tcp("2001:db8:0:1::5")),
    peerOf(tcp("2001:db8:0:2::5")),
  );
  assert.equal(peerOf(tcp("::1")), "0:0:0:0::/64");
  assert.equal(peerOf(undefined), "");
  assert.equal(
    peerOf({ transport: "unix", path: "/tmp/s" } as Deno.UnixAddr),
    "",
  );
});

Deno.test("AddressQuota refuses a peer at its limit and gives slots back", () => {
  const quota = new AddressQuota(2);
  assert.ok(quota.take("a"));
  assert.ok(quota.take("a"));
  assert.ok(!quota.take("a"));
  assert.ok(quota.take("b"));
  quota.release("a");
  assert.equal(quota.heldBy("a"), 1);
  assert.ok(quota.take("a"));
  quota.release("a");
  quota.release("a");
  quota.release("b");
  assert.equal(quota.peers, 0);
});

Deno.test("XHR sessions: one address at its cap gets 503, another still gets in, expiry gives slots back", async () => {
  const clock = new ManualClock();
  const sockjs = server(clock);
  try {
    assert.equal((await xhr(sockjs, "10.0.0.1", "a1")).text, "o\n");
    assert.equal((await xhr(sockjs, "10.0.0.1", "a2")).text, "o\n");
    const refused = await xhr(sockjs, "10.0.0.1", "a3");
    assert.equal(refused.status, 503);
    assert.match(
      refused.text,
      /10\.0\.0\.1.*limit is 2.*maxXhrSessionsPerAddress/,
    );
    // Another address is not affected.
    assert.equal((await xhr(sockjs, "10.0.0.2", "b1")).text, "o\n");
    // Unpolled sessions expire after disconnectDelayMs; the slots return.
    await clock.advance(1_001);
    assert.equal((await xhr(sockjs, "10.0.0.1", "a4")).text, "o\n");
  } finally {
    sockjs.close();
  }
});

Deno.test("XHR and WebSocket connections of one address share maxConnectionsPerAddress", async () => {
  const clock = new ManualClock();
  const sockjs = server(clock, [], {
    maxXhrSessionsPerAddress: 10,
    maxConnectionsPerAddress: 2,
  });
  try {
    await xhr(sockjs, "10.0.0.1", "a1");
    await xhr(sockjs, "10.0.0.1", "a2");
    const refused = await xhr(sockjs, "10.0.0.1", "a3");
    assert.equal(refused.status, 503);
    assert.match(refused.text, /maxConnectionsPerAddress/);
    assert.equal(sockjs.connectionsOf(tcp("10.0.0.1")), 2);
    assert.equal(sockjs.connectionsOf(tcp("10.0.0.2")), 0);
  } finally {
    sockjs.close();
  }
});

Deno.test("a session silent for idleSessionMs is closed with 4001; one that spoke is not", async () => {
  const clock = new ManualClock();
  const sessions: Session[] = [];
  const sockjs = server(clock, sessions, {
    idleSessionMs: 5_000,
    disconnectDelayMs: 60_000,
  });
  try {
    await xhr(sockjs, "10.0.0.1", "silent");
    await xhr(sockjs, "10.0.0.2", "talks");
    const sent = await xhr(sockjs, "10.0.0.2", "talks", "xhr_send", '["hi"]');
    assert.equal(sent.status, 204);
    await clock.advance(5_001);
    assert.equal(sessions[0].closed, true);
    assert.equal(sessions[1].closed, false);
    const poll = await xhr(sockjs, "10.0.0.1", "silent");
    assert.match(
      poll.text,
      /^c\[4001,"Idle session: no message within 5000 ms/,
    );
  } finally {
    sockjs.close();
  }
});
