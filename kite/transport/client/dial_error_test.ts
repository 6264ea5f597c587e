import assert from "node:assert/strict";
import { describeError, dialError } from "./dial_error.ts";

Deno.test("describeError() follows the causes fetch hides behind 'fetch failed'", () => {
  const root = new Error("tcp connect error: Connection refused");
  const error = new TypeError("fetch failed", {
    cause: new Error("error sending request", { cause: root }),
  });
  assert.equal(
    describeError(error),
    "fetch failed: error sending request: tcp connect error: Connection refused",
  );
  assert.equal(describeError("plain"), "plain");
  assert.equal(
    describeError(new ErrorEvent("error", { message: "boom" })),
    "boom",
  );
});

Deno.test("dialError() names the URL and the cause, and keeps the cause", () => {
  const cause = new Error("handshake answered HTTP 404");
  const error = dialError("ws://h:1/kite/100/ab/websocket", cause);
  assert.equal(
    error.message,
    "dial ws://h:1/kite/100/ab/websocket: handshake answered HTTP 404",
  );
  assert.equal(error.cause, cause);
  assert.equal(
    dialError("http://h/kite", "aborted").message,
    "dial http://h/kite: aborted",
  );
});
