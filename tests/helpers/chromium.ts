/**
 * Headless Chromium from Debian (`/usr/bin/chromium`, installed by
 * `scripts/setup_test_env.ts`) driven by playwright-core from npm, for the
 * browser-kite tests and the bench.
 *
 * @module
 */
import { type Browser, chromium } from "playwright-core";
import { findBinary } from "./binaries.ts";

/**
 * Launches headless Chromium; close it with `browser.close()`.
 * @throws {Error} saying how to install Chromium when it is missing.
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = findBinary("chromium");
  if (executablePath === undefined) {
    throw new Error(
      "chromium not found on PATH: run `deno task test` as root once (it " +
        "installs it) or `apt-get install -y chromium`",
    );
  }
  return await chromium.launch({
    executablePath,
    headless: true,
    // Root (CI containers) cannot use Chromium's sandbox.
    args: Deno.uid?.() === 0 ? ["--no-sandbox"] : [],
  });
}
