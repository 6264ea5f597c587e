/**
 * A kite whose `secret` method needs authentication: it trusts the Kontrol
 * key found in `$KITE_HOME/kite.key` and answers `hello <username>`.
 *
 *     deno task secret:server                  # listens on KITE_PORT, default 3637
 *
 * Call it with a kite key (same Kontrol) or a token from Kontrol's getKites.
 *
 * @module
 */
import { Kite } from "../../mod.ts";

/** Builds the secret kite (tests reuse it). */
export function secretKite(): Kite {
  const kite = new Kite("secret", "1.0.0");
  kite.handle("secret", (r) => `hello ${r.username}`);
  return kite;
}

if (import.meta.main) {
  const kite = secretKite();
  if (!kite.config.kontrolKey) {
    console.error(
      "no trusted Kontrol key: write a kite.key with `deno task kontrol --initial --username <you>`",
    );
    Deno.exit(1);
  }
  await kite.serve({ port: kite.config.port || 3637 });
  console.log(
    `secret kite on ${kite.url}, trusting the Kontrol at ${kite.config.kontrolURL}`,
  );
}
