import {
  assert,
  assertEquals,
  assertThrows,
} from "../../../tests/helpers/assert.ts";
import type { CloseInfo } from "../session.ts";
import { Mux, muxFailure, MuxProtocolError } from "./mux.ts";

/** Two muxes joined in memory; `held` frames wait until `deliver()`. */
function pair(windowChars = 100) {
  const log: string[] = [];
  const held: string[] = [];
  let hold = false;
  const proxySide = new Mux({
    onOpen: () => {},
    onMessage: (id, m) => log.push(`proxy got ${id} ${m}`),
    onClose: (id, info) => log.push(`proxy closed ${id} ${info.code}`),
  }, {
    send: (f) => (kiteSide.receive(f), true),
    windowChars,
  });
  const kiteSide: Mux = new Mux({
    onOpen: (id, transport, remote) =>
      log.push(`kite opened ${id} ${transport} ${remote}`),
    onMessage: (id, m) => log.push(`kite got ${id} ${m}`),
    onClose: (id, info: CloseInfo) =>
      log.push(`kite closed ${id} ${info.code} ${info.reason}`),
  }, {
    send: (f) => (hold ? held.push(f) : proxySide.receive(f), true),
    windowChars,
  });
  return {
    proxySide,
    kiteSide,
    log,
    holdAcks: (on: boolean) => hold = on,
    deliver: () => held.splice(0).forEach((f) => proxySide.receive(f)),
  };
}

Deno.test("Mux carries opens, messages (with spaces) and closes both ways", () => {
  const { proxySide, kiteSide, log } = pair();
  proxySide.open(1, "websocket", "127.0.0.1:5000");
  proxySide.message(1, "a b c");
  kiteSide.message(1, "reply 1");
  kiteSide.close(1, { code: 3000, reason: "Go away!" });
  assertEquals(log, [
    "kite opened 1 websocket 127.0.0.1:5000",
    "kite got 1 a b c",
    "proxy got 1 reply 1",
    // The peer hears of the close first: the frame goes out before onClose.
    "proxy closed 1 3000",
    "kite closed 1 3000 Go away!",
  ]);
  assertEquals(proxySide.size + kiteSide.size, 0);
  // Frames of a closed stream are dropped, not errors.
  kiteSide.receive("m1 late");
  assertEquals(proxySide.message(1, "x"), false);
});

Deno.test("Mux closes a stream whose receiver acknowledges nothing past its window, and only that stream", () => {
  const { proxySide, log, holdAcks, deliver } = pair(100);
  proxySide.open(1, "websocket", "");
  proxySide.open(2, "websocket", "");
  holdAcks(true);
  let sent = 0;
  while (proxySide.message(1, "x".repeat(30))) sent++;
  assert(sent >= 3 && sent <= 5, `${sent} messages within the window`);
  assertEquals(proxySide.has(1), false);
  assert(log.some((l) => l.startsWith("proxy closed 1 4008")));
  assert(
    log.some((l) => l.startsWith("kite closed 1 4008 tunnel stream backlog")),
  );
  assertEquals(proxySide.message(2, "still fine"), true);
  // Acknowledgements let a reading stream go on for ever.
  holdAcks(false);
  deliver();
  for (let i = 0; i < 100; i++) {
    assert(proxySide.message(2, "y".repeat(30)), `message ${i}`);
  }
});

Deno.test("Mux.receive() throws MuxProtocolError for frames outside the four kinds", () => {
  const { kiteSide } = pair();
  for (
    const bad of [
      "",
      "m",
      "mx hi",
      "m0 hi",
      "m-1 hi",
      "z1 x",
      "a1 -5",
      "m99999999999999999999 x",
    ]
  ) {
    assertThrows(() => kiteSide.receive(bad), MuxProtocolError);
  }
  kiteSide.receive("o7 websocket 1.2.3.4");
  assertThrows(
    () => kiteSide.receive("o7 websocket 1.2.3.4"),
    MuxProtocolError,
  );
});

Deno.test("muxFailure: a broken frame closes the tunnel 1002, a failure of ours 1011, each saying why", () => {
  const mux = new Mux({
    onOpen() {},
    onMessage() {
      throw new TypeError("handler broke");
    },
    onClose() {},
  }, { send: () => true });
  const broken = (() => {
    try {
      mux.receive("?junk");
    } catch (err) {
      return muxFailure(err);
    }
  })();
  assertEquals(broken?.code, 1002);
  assert(broken!.reason.length > 0);
  mux.receive("o1 websocket 127.0.0.1:1");
  const ours = (() => {
    try {
      mux.receive("m1 hello");
    } catch (err) {
      return muxFailure(err);
    }
  })();
  assertEquals(ours, {
    code: 1011,
    reason: "tunnel frame failed: handler broke",
  });
});
