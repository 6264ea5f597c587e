/**
 * One Kontrol per Deno KV data directory: a lock file holding the owner's
 * PID. Two Kontrols on one directory would each supervise the other's
 * kites without knowing of them; kites shared by several Kontrols belong
 * in etcd or PostgreSQL.
 *
 * @module
 */

/** File name of the lock inside the data directory. */
export const DATA_LOCK_FILE = "kontrol.lock";

/** A held lock; {@linkcode DataLock.release} it when Kontrol stops. */
export interface DataLock {
  /** Unlocks and closes the file (also done by the OS when the process ends). */
  release(): void;
}

/**
 * Locks `dir` for this process (an advisory lock the OS drops when the
 * process dies, so a crashed Kontrol leaves nothing to clean up).
 * @throws {Error} naming the directory and the other Kontrol's PID when it
 * is held.
 */
export async function lockDataDir(dir: string): Promise<DataLock> {
  const path = `${dir}/${DATA_LOCK_FILE}`;
  const file = await Deno.open(path, { read: true, write: true, create: true });
  try {
    if (!await file.tryLock(true)) {
      const pid = (await Deno.readTextFile(path).catch(() => "")).trim();
      throw new Error(
        `another Kontrol${
          pid ? ` (PID ${pid})` : ""
        } is using the data directory ${dir}: stop it, or give this Kontrol ` +
          "a directory of its own with --data or KONTROL_DATA (Kontrols that " +
          "share their kites use etcd or PostgreSQL storage)",
      );
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch (err) {
    file.close();
    throw err;
  }
  let open = true;
  return {
    release() {
      if (!open) return;
      open = false;
      file.close(); // closing drops the lock
    },
  };
}
