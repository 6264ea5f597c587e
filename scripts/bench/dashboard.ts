/**
 * The Kontrol dashboard with many kites, in headless Chromium: time to
 * first render with 10,000 kites registered (beside an empty registry, the
 * same run), and how many watch events per second it keeps up with while
 * a burst registers and then removes 5,000 more (beside a Deno kite
 * watching the same burst), with the longest gap between its frames
 * meanwhile. Registrations go straight into Kontrol's storage, so the
 * numbers are Kontrol's watch, the wire and the page — not 10,000 sockets.
 *
 * @module
 */
import type { Page } from "playwright-core";
import { makeIdentity } from "../../kite/protocol.ts";
import type { KiteRecord } from "../../storage/storage.ts";
import {
  bundleBrowser,
  DASHBOARD_ENTRY,
} from "../../tests/helpers/browser_bundle.ts";
import { launchChromium } from "../../tests/helpers/chromium.ts";
import {
  kontrolKite,
  startTestKontrol,
  type TestKontrol,
} from "../../tests/helpers/kontrol_harness.ts";
import { median, round } from "./stats.ts";

/** What {@linkcode benchDashboard} measured. */
export interface DashboardBenchResult {
  /** Kites registered for the first-render rounds. */
  kites: number;
  /** Median ms from navigation to the first render of the whole set. */
  firstRenderMs: number;
  /** The same with no kites registered. */
  emptyRenderMs: number;
  /** Watch events in the burst. */
  burst: number;
  /** Burst events per second the page showed (median over rounds). */
  pageEventsPerSec: number;
  /** The same burst, seen by a Deno kite's watchKites. */
  denoEventsPerSec: number;
  /** page ÷ Deno watcher (same run). */
  ratio: number;
  /** Longest gap between the page's animation frames during the bursts. */
  longestFrameMs: number;
  /** The dashboard's own work in its busiest frame of the bursts (apply + render), ms. */
  busiestFrameMs: number;
}

const ENVIRONMENTS = ["production", "staging", "development", "test"];
const NAMES = Array.from({ length: 25 }, (_, i) => `service-${i}`);

function record(i: number, keyId: string, prefix: string): KiteRecord {
  return {
    kite: makeIdentity({
      username: "alice",
      environment: ENVIRONMENTS[i % ENVIRONMENTS.length],
      name: NAMES[i % NAMES.length],
      version: `1.${i % 3}.0`,
      region: i % 2 ? "eu-west" : "us-east",
      hostname: `host-${i % 500}`,
      id: `${prefix}-${i}`,
    }),
    url: `http://10.0.${(i >> 8) & 255}.${i & 255}:3636/kite`,
    keyId,
  };
}

async function firstRender(page: Page, url: string): Promise<number> {
  // A new document each time (a URL that differs only in its fragment
  // would not load again).
  await page.goto("about:blank");
  await page.goto(url);
  for (;;) {
    const ms = await page.evaluate(
      "window.kontrolDashboard?.firstRenderMs",
    ) as number | undefined;
    if (ms !== undefined) return ms;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function kitesShown(page: Page): Promise<number> {
  return await page.evaluate("window.kontrolDashboard?.kites ?? -1") as number;
}

async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!await cond()) {
    if (Date.now() > deadline) throw new Error("dashboard bench: timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Runs the dashboard benchmark. */
export async function benchDashboard(
  options: { kites: number; burst: number; rounds: number },
): Promise<DashboardBenchResult> {
  const { code } = await bundleBrowser({ entry: DASHBOARD_ENTRY });
  const tk: TestKontrol = await startTestKontrol({
    dashboard: { script: code },
  });
  const browser = await launchChromium();
  const viewer = await kontrolKite(tk, "viewer", "alice");
  try {
    const keyId = tk.kontrol.selfPair.id;
    const token = await viewer.kontrol.getToken({
      username: "kontrol",
      name: "kontrol",
    });
    const url = `${tk.base}/dashboard#token=${token}`;
    const page = await browser.newPage({
      viewport: { width: 1200, height: 800 },
    });
    const empty: number[] = [];
    for (let i = 0; i < options.rounds; i++) {
      empty.push(await firstRender(page, url));
    }
    for (let i = 0; i < options.kites; i++) {
      await tk.storage.add(record(i, keyId, "base"));
    }
    const full: number[] = [];
    for (let i = 0; i < options.rounds; i++) {
      full.push(await firstRender(page, url));
      if (await kitesShown(page) !== options.kites) {
        throw new Error("dashboard bench: the first render missed kites");
      }
    }

    // The page stays open on the full set; a Deno kite watches too.
    let denoSeen = 0;
    const cancel = await viewer.watchKites({ username: "alice" }, () => {
      denoSeen++;
    });
    await page.evaluate(`(() => {
      window.kontrolDashboard.busiestFrameMs = 0;
      let last = performance.now();
      window.longestFrame = 0;
      const tick = (now) => {
        window.longestFrame = Math.max(window.longestFrame, now - last);
        last = now;
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    })()`);
    const pageRates: number[] = [];
    const denoRates: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const records = Array.from(
        { length: options.burst },
        (_, i) => record(i, keyId, `burst${round}`),
      );
      // Two phases, each to an exact count: the burst registers, then goes.
      let pageMs = 0;
      let denoMs = 0;
      for (
        const [write, shown] of [
          [(r: KiteRecord) => tk.storage.add(r), options.kites + options.burst],
          [(r: KiteRecord) => tk.storage.delete(r.kite), options.kites],
        ] as const
      ) {
        denoSeen = 0;
        const started = performance.now();
        const deno = waitFor(() => Promise.resolve(denoSeen >= options.burst))
          .then(() => denoMs += performance.now() - started);
        // Waits in the page (checked each frame): polling over the DevTools
        // protocol would load the page it measures.
        const shownAll = page.evaluate(`new Promise((resolve) => {
          const tick = () => window.kontrolDashboard.kites === ${shown}
            ? resolve() : requestAnimationFrame(tick);
          tick();
        })`).then(() => pageMs += performance.now() - started);
        for (const r of records) await write(r);
        await Promise.all([deno, shownAll]);
      }
      const events = 2 * options.burst;
      pageRates.push(events / (pageMs / 1000));
      denoRates.push(events / (denoMs / 1000));
    }
    await cancel();
    const longest = await page.evaluate("window.longestFrame") as number;
    const busiest = await page.evaluate(
      "window.kontrolDashboard.busiestFrameMs",
    ) as number;
    const pageRate = median(pageRates);
    const denoRate = median(denoRates);
    return {
      kites: options.kites,
      firstRenderMs: Math.round(median(full)),
      emptyRenderMs: Math.round(median(empty)),
      burst: 2 * options.burst,
      pageEventsPerSec: Math.round(pageRate),
      denoEventsPerSec: Math.round(denoRate),
      ratio: round(pageRate / denoRate, 2),
      longestFrameMs: Math.round(longest),
      busiestFrameMs: round(busiest, 1),
    };
  } finally {
    await browser.close();
    await viewer.close();
    await tk.close();
  }
}

if (import.meta.main) {
  console.log(
    await benchDashboard({ kites: 10_000, burst: 5_000, rounds: 3 }),
  );
}
