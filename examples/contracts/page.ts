/**
 * The page's script: calls the calculator kite through the same contract
 * the Deno client uses (`./contract.ts`), with the browser build.
 * `deno task build:browser` bundles it to `dist/contracts_page.js`, taking
 * `Kite`, `dialTyped`, `defineContract`, `fn` and zod from
 * `kite.browser.js` and `kite.contract.js` beside it.
 *
 * @module
 */
import { Kite, KiteError } from "../../kite/browser/mod.ts";
import { dialTyped } from "../../kite/browser/contract.ts";
import { calculator } from "./contract.ts";

// The one DOM call this page makes (no `lib="dom"`: see kontrol/dashboard/dom.ts).
const { document } = globalThis as unknown as {
  document: {
    getElementById(id: string): { textContent: string | null } | null;
  };
};
const show = (id: string, text: string) => {
  const element = document.getElementById(id);
  if (element) element.textContent = text;
};
const failure = (err: unknown) =>
  err instanceof KiteError ? `${err.type}: ${err.message}` : String(err);

const kite = new Kite("calculator-page", "1.0.0");
const client = kite.newClient(new URL("/kite", location.href).href, {
  transport: "raw-websocket",
});
try {
  // Fails here, before any call, if the kite serves calculator 2.x.
  const calc = await dialTyped(client, calculator);
  show("status", "connected");
  const n: number = await calc.square(4);
  show("square", `square(4) = ${n}`);
  const { quotient, remainder } = await calc.divide({
    dividend: 17,
    divisor: 5,
  });
  show("divide", `17 / 5 = ${quotient} remainder ${remainder}`);
  const ticks: number[] = [];
  const done = await calc.countdown(3, (left) => {
    ticks.push(left);
    show("countdown", `countdown(3) called back ${ticks.join(", ")}`);
  });
  show(
    "countdown",
    `countdown(3) called back ${ticks.join(", ")}, then ${done}`,
  );
  // Types cannot see this mistake (the contract allows 0…100); the
  // contract's check can.
  show(
    "invalid",
    "countdown(1000) → " +
      await calc.countdown(1000, () => {}).then((r) => r, failure),
  );
} catch (err) {
  show("status", failure(err));
} finally {
  client.close();
}
