/**
 * A kite whose `secret` method needs authentication: it trusts the Kontrol
 * key found in `$KITE_HOME/kite.key` and answers `hello <username>`.
 *
 *     deno task secret:server                  # listens on KITE_PORT, default 3637
 *
 * It registers with the Kontrol named in the kite.key, so callers find it
 * with `getKites` and call it with the token they get; a kite key from the
 * same Kontrol works too.
 *
 * @module
 */
import { configFromEnv, Kite, type KiteOptions } from "../../mod.ts";

/** Builds the secret kite (tests reuse it, passing their own options). */
export function secretKite(options: KiteOptions = {}): Kite {
  const kite = new Kite("secret", "1.0.0", options);
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
  // KITE_PORT=0 asks for a free port; only an unset KITE_PORT means 3637.
  await kite.serve({ port: configFromEnv().port ?? 3637 });
  console.log(
    `secret kite on ${kite.url}, trusting the Kontrol at ${kite.config.kontrolURL}`,
  );
  if (kite.config.kontrolURL) {
    await kite.registerForever();
    console.log(`registered with Kontrol as ${kite.identity.id}`);
  }
}
