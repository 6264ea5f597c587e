import { assertEquals } from "../tests/helpers/assert.ts";
import { childEnv, ROOT } from "../tests/helpers/kontrol_task.ts";

Deno.test("dropStartupPermissions() revokes file reads, variables and system information, scoped grants included", async () => {
  const file = `${ROOT}deno.json`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--allow-read=${file},${ROOT}`,
      "--allow-env=KITE_*",
      "--allow-sys=hostname",
      `${ROOT}tests/fixtures/drop_permissions_probe.ts`,
      file,
    ],
    env: childEnv({ KITE_PROBE: "1" }),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assertEquals(JSON.parse(new TextDecoder().decode(out.stdout)), {
    before: { read: "ok", env: "ok", sys: "ok" },
    after: { read: "NotCapable", env: "NotCapable", sys: "NotCapable" },
  });
});
