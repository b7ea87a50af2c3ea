/**
 * Encodes an etcd transaction for the Raft log and decodes it when the state machine applies it. The
 * request holds byte strings (range ends, value compares) that JSON cannot carry as they are: they
 * travel as {"$bytes": base64}. Decoding trusts its input, because only this encoder writes it.
 */
import type { TxnRequest } from "./kv-types.ts";

export function encodeTxnCommand(request: TxnRequest): string {
  // A function, not an arrow: `this[key]` is the value before Buffer's own toJSON() rewrote it.
  return JSON.stringify(request, function (this: Record<string, unknown>, key: string, value: unknown) {
    const original = this[key];
    return original instanceof Uint8Array ? { $bytes: Buffer.from(original).toString("base64") } : value;
  });
}

export function decodeTxnCommand(text: string): TxnRequest {
  return JSON.parse(text, (_, value: unknown) => {
    if (value !== null && typeof value === "object" && "$bytes" in value && typeof (value as { $bytes: unknown }).$bytes === "string") {
      return new Uint8Array(Buffer.from((value as { $bytes: string }).$bytes, "base64"));
    }
    return value;
  }) as TxnRequest;
}
