// A data directory written by the version before members carried names and client URLs
// (test/storage/fixtures/data-dir-v1, made by that version's RaftStorage: a snapshot whose membership
// has peer addresses, configuration entries with and without them) still loads: the storage codec
// reads it, the configuration entries decode, a Raft core restores from it with the membership of
// its last entry, and a member then publishes its attributes on top of it.
import test from "ava";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { changeMembership, decodeMembership, memberAddress, memberClientUrl } from "../../src/core/membership.ts";
import { Raft } from "../../src/core/raft.ts";
import { FileDisk } from "../../src/storage/file-disk.ts";
import { RaftStorage } from "../../src/storage/raft-storage.ts";
import { TEST_CONFIG } from "../core/harness.ts";

const FIXTURE = join(import.meta.dirname, "fixtures", "data-dir-v1");

test("a data directory written before names and client URLs existed loads and restores its membership", (t) => {
  const directory = mkdtempSync(join(tmpdir(), "pgraft-old-data-"));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  cpSync(FIXTURE, directory, { recursive: true });
  const disk = new FileDisk(directory);
  t.teardown(() => disk.close());
  const storage = RaftStorage.open(disk);
  const state = storage.state();
  t.deepEqual(state.snapshot?.metadata, { index: 3, term: 2, membership: { voters: [1, 2, 3], learners: [4], addresses: { "4": "127.0.0.1:7004" } } });
  t.deepEqual(state.hardState, { term: 2, vote: 1, commit: 6 });
  t.deepEqual(state.entries.map((entry) => entry.kind), ["config", "noop", "config"]);
  const last = decodeMembership(state.entries[2]!.data);
  t.deepEqual(last, { voters: [1, 3, 4], learners: [], addresses: { "4": "127.0.0.1:7004" } });

  const raft = new Raft({ ...TEST_CONFIG, id: 1, random: () => 0.5 }, { hardState: state.hardState, entries: state.entries, snapshot: state.snapshot, membership: { voters: [1, 2, 3], learners: [] }, applied: 3 });
  t.deepEqual(raft.membership, last);
  t.is(memberAddress(raft.membership, 4), "127.0.0.1:7004");
  const published = changeMembership(raft.membership, { type: "attributes", nodeId: 4, name: "n4", clientUrl: "http://127.0.0.1:2382" });
  t.true(published.ok);
  if (published.ok) t.is(memberClientUrl(published.membership, 4), "http://127.0.0.1:2382");

  // Written again by this version, the directory loads once more.
  storage.save({ entries: [{ index: 7, term: 2, kind: "config", data: JSON.stringify(published.ok ? published.membership : {}) }] });
  disk.close();
  const reopened = RaftStorage.open(new FileDisk(directory));
  t.is(memberClientUrl(decodeMembership(reopened.state().entries.at(-1)!.data), 4), "http://127.0.0.1:2382");
});
