// A transaction survives the trip through the Raft log: byte strings (Buffers and plain Uint8Arrays)
// come back as the same bytes, and the rest of the request unchanged.
import test from "ava";
import { decodeTxnCommand, encodeTxnCommand } from "../../src/api/txn-codec.ts";
import type { TxnRequest } from "../../src/api/kv-types.ts";

test("encodeTxnCommand() and decodeTxnCommand() round-trip byte strings and fields", (t) => {
  const request = {
    compare: [{ target: "VALUE", result: "EQUAL", key: "a", rangeEnd: Buffer.from([]), operand: Buffer.from("x\u0000y") }],
    success: [{ type: "delete_range", request: { key: "k/", rangeEnd: new Uint8Array([107, 48]), prevKv: true } }],
    failure: [],
  } as unknown as TxnRequest;
  const decoded = decodeTxnCommand(encodeTxnCommand(request)) as unknown as typeof request;
  const compare = decoded.compare[0] as unknown as { operand: Uint8Array; rangeEnd: Uint8Array; key: string };
  t.true(compare.operand instanceof Uint8Array);
  t.deepEqual([...compare.operand], [...Buffer.from("x\u0000y")]);
  t.is(compare.rangeEnd.length, 0);
  t.is(compare.key, "a");
  const op = decoded.success[0] as unknown as { request: { rangeEnd: Uint8Array; prevKv: boolean } };
  t.deepEqual([...op.request.rangeEnd], [107, 48]);
  t.true(op.request.prevKv);
});
