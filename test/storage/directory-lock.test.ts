// The data-directory lock: a second holder in the same process is refused, a lock naming a dead pid is
// taken over, and a lock naming our own pid that this process does not hold (a restarted container's
// node is pid 1 again) is a previous incarnation's, taken over too.
import test from "ava";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { DataDirectoryLockedError, DirectoryLock, LOCK_FILE } from "../../src/storage/directory-lock.ts";

function directory(t: { teardown(fn: () => void): void }): string {
  const made = mkdtempSync(join(tmpdir(), "pgraft-lock-"));
  t.teardown(() => rmSync(made, { recursive: true, force: true }));
  return made;
}

test("a lock this process holds refuses a second acquire, and is free again once released", (t) => {
  const dir = directory(t);
  const lock = DirectoryLock.acquire(dir);
  const error = t.throws(() => DirectoryLock.acquire(dir), { instanceOf: DataDirectoryLockedError });
  t.regex(error.message, new RegExp(`process ${process.pid}`));
  lock.release();
  const again = DirectoryLock.acquire(dir);
  t.is(again.takenOverFromPid, undefined);
  again.release();
});

test("a lock naming our pid that this process does not hold is a previous incarnation's and is taken over", (t) => {
  const dir = directory(t);
  writeFileSync(join(dir, LOCK_FILE), `${JSON.stringify({ pid: process.pid, host: hostname() })}\n`);
  const lock = DirectoryLock.acquire(dir);
  t.is(lock.takenOverFromPid, process.pid);
  t.is(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).pid, process.pid);
  lock.release();
});

test("a lock naming a dead pid is taken over", (t) => {
  const dir = directory(t);
  const deadPid = 2 ** 22 + 12345; // Above Linux's pid_max default: no such process.
  writeFileSync(join(dir, LOCK_FILE), `${JSON.stringify({ pid: deadPid, host: hostname() })}\n`);
  const lock = DirectoryLock.acquire(dir);
  t.is(lock.takenOverFromPid, deadPid);
  lock.release();
});
