import { assertEquals } from "../tests/helpers/assert.ts";
import { Client } from "./client.ts";
import { Kite } from "./kite.ts";
import type { Auth } from "./protocol.ts";
import type { Session } from "./transport/session.ts";

/** An accepted connection whose sent messages are kept. */
function capture(): { client: Client; sent: string[]; kite: Kite } {
  const sent: string[] = [];
  const session: Session = {
    transport: "websocket",
    id: "test",
    remoteAddr: "",
    closed: false,
    closeInfo: undefined,
    send: (message) => sent.push(message) > 0,
    close: () => {},
  };
  const kite = new Kite("enc", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { logLevel: "FATAL" },
  });
  return { client: new Client(kite, "", {}, session), sent, kite };
}

/** What a call must look like: plain JSON.stringify of the Go-ordered envelope. */
function expected(
  kite: Kite,
  method: string,
  auth: unknown,
  withArgs: unknown[],
  callbacks: Record<string, unknown>,
): string {
  return JSON.stringify({
    method,
    arguments: [{
      kite: kite.identity,
      authentication: auth,
      responseCallback: "[Function]",
      withArgs,
    }],
    callbacks,
  });
}

class TokenLike {
  type = "token";
  key = "k";
  toJSON(): unknown {
    return { type: "custom" };
  }
}

Deno.test("tell() sends exactly what JSON.stringify makes of the call, whatever the credentials", () => {
  const { client, sent, kite } = capture();
  const token = "eyJ" + "x".repeat(700);
  const cases: unknown[] = [
    null,
    { type: "token", key: token },
    { key: token, type: "token" },
    { type: "token", key: token, extra: [1, "<&>"] },
    { type: "kiteKey", key: 'a"b\\c\u2028' },
    undefined,
    new TokenLike(),
  ];
  let id = 0;
  for (const auth of cases) {
    client.auth = auth as Auth | null;
    // Twice: the second call comes from the cached encoding.
    for (let i = 0; i < 2; i++) {
      void client.tell("square", 4);
      assertEquals(
        sent.pop(),
        expected(kite, "square", auth, [4], {
          [id++]: [0, "responseCallback"],
        }),
      );
    }
  }
});

Deno.test("tell() re-encodes the identity and credentials after they change in place", () => {
  const { client, sent, kite } = capture();
  const auth = { type: "token", key: "one" };
  client.auth = auth;
  void client.tell("m");
  auth.key = "two";
  kite.identity.username = "changed";
  void client.tell("m");
  assertEquals(
    sent.pop(),
    expected(kite, "m", { type: "token", key: "two" }, [], {
      "1": [0, "responseCallback"],
    }),
  );
  assertEquals(JSON.parse(sent[0]).arguments[0].authentication.key, "one");
});

Deno.test("tell() lists functions in withArgs after the response callback", () => {
  const { client, sent, kite } = capture();
  void client.tell("cb", 1, () => {}, { deep: [2, () => {}] }, "\u{1F600}");
  assertEquals(
    sent.pop(),
    expected(kite, "cb", null, [1, "[Function]", {
      deep: [2, "[Function]"],
    }, "\u{1F600}"], {
      "0": [0, "responseCallback"],
      "1": [0, "withArgs", 1],
      "2": [0, "withArgs", 2, "deep", 1],
    }),
  );
});
