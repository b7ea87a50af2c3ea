// The pieces under the gRPC port: HPACK decoding (RFC 7541's own examples), the :authority rewrite
// that lets Node's HTTP/2 server take Go clientv3's "http://host:port" authority (shown against a real
// node:http2 server, which resets the stream without it), and gRPC messages keeping every field.
import test from "ava";
import { connect as netConnect, createServer as createNetServer } from "node:net";
import { createServer as createHttp2Server } from "node:http2";
import { AuthorityFixer, ClientFrameRewriter, fixAuthority, HpackDecoder, huffmanDecode } from "../../src/api/grpc-authority.ts";
import { roundTrip } from "../../src/api/grpc-proto.ts";
import { HTTP2_PREFACE, sniffConnection } from "../../src/api/http-server.ts";

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ""), "hex");

test("HPACK: RFC 7541 C.4 (Huffman, dynamic table across blocks) decodes", (t) => {
  const decoder = new HpackDecoder();
  const first = decoder.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
  t.deepEqual(first.map((field) => [field.name, field.value]), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  const second = decoder.decode(hex("8286 84be 5886 a8eb 1064 9cbf"));
  t.deepEqual(second.map((field) => [field.name, field.value]), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  t.is(huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")).toString(), "www.example.com");
  t.throws(() => huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f400")), { message: /padding/ });
  t.throws(() => new HpackDecoder().decode(hex("be")), { message: /neither table/ });
});

test("fixAuthority keeps host:port and strips a scheme or path", (t) => {
  t.is(fixAuthority("http://127.0.0.1:2379"), "127.0.0.1:2379");
  t.is(fixAuthority("https://[::1]:2379/x"), "[::1]:2379");
  t.is(fixAuthority("127.0.0.1:2379"), "127.0.0.1:2379");
});

/** A HEADERS frame (END_HEADERS) on `streamId` whose block is `block`. */
function headersFrame(streamId: number, block: Buffer, flags = 0x4 | 0x1): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(block.length, 0, 3);
  header[3] = 0x1;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, block]);
}

/** :method GET, :scheme http, :path /, :authority http://127.0.0.1:2379 (incremental indexing, plain). */
function badAuthorityBlock(): Buffer {
  const authority = Buffer.from("http://127.0.0.1:2379");
  return Buffer.concat([hex("8286 84"), Buffer.from([0x41, authority.length]), authority]);
}

test("the rewriter fixes :authority, also when the client refers to it through its dynamic table", (t) => {
  const rewriter = new ClientFrameRewriter();
  const settings = hex("000000 04 00 00000000");
  const input = Buffer.concat([HTTP2_PREFACE, settings, headersFrame(1, badAuthorityBlock()), headersFrame(3, hex("8286 84be"))]);
  // Fed a byte at a time: frames split anywhere must come out whole.
  const out = Buffer.concat([...input].map((byte) => rewriter.push(Buffer.from([byte]))));
  t.deepEqual(out.subarray(0, HTTP2_PREFACE.length + settings.length), Buffer.concat([HTTP2_PREFACE, settings]));
  const decoder = new HpackDecoder();
  let offset = HTTP2_PREFACE.length + settings.length;
  const authorities: string[] = [];
  while (offset < out.length) {
    const length = out.readUIntBE(offset, 3);
    t.is(out[offset + 3], 0x1);
    t.is(out[offset + 4], 0x4 | 0x1, "END_HEADERS and END_STREAM kept");
    const fields = decoder.decode(out.subarray(offset + 9, offset + 9 + length));
    authorities.push(fields.find((field) => field.name === ":authority")!.value);
    offset += 9 + length;
  }
  t.deepEqual(authorities, ["127.0.0.1:2379", "127.0.0.1:2379"]);
});

/** Sends one raw HTTP/2 request with a bad :authority; answers the status, or the stream's reset. */
async function rawRequest(fix: boolean): Promise<string> {
  const server = createHttp2Server();
  server.on("stream", (stream, headers) => {
    stream.respond({ ":status": 200 });
    stream.end(String(headers[":authority"]));
  });
  const port = await new Promise<number>((resolve) => {
    const tcp = createNetServer((socket) => {
      if (!fix) server.emit("connection", socket);
      else sniffConnection(socket, () => server.emit("connection", new AuthorityFixer(socket)));
    });
    tcp.listen(0, "127.0.0.1", () => resolve((tcp.address() as { port: number }).port));
    cleanups.push(() => tcp.close());
  });
  const socket = netConnect(port, "127.0.0.1");
  const answer = new Promise<string>((resolve) => {
    let received = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      // Frames from the server: find HEADERS (1) or RST_STREAM (3) on stream 1.
      for (let offset = 0; offset + 9 <= received.length; ) {
        const length = received.readUIntBE(offset, 3);
        const type = received[offset + 3];
        if (received.readUInt32BE(offset + 5) === 1 && type === 0x3) resolve(`reset ${received.readUInt32BE(offset + 9)}`);
        if (received.readUInt32BE(offset + 5) === 1 && type === 0x1) resolve("answered");
        offset += 9 + length;
      }
    });
    socket.on("close", () => resolve("closed"));
  });
  socket.write(Buffer.concat([HTTP2_PREFACE, hex("000000 04 00 00000000"), headersFrame(1, badAuthorityBlock())]));
  const result = await answer;
  socket.destroy();
  server.close();
  return result;
}

const cleanups: (() => void)[] = [];
test.after.always(() => {
  for (const cleanup of cleanups) cleanup();
});

test("node:http2 resets a stream with Go clientv3's authority, and serves it through the AuthorityFixer", async (t) => {
  t.is(await rawRequest(false), "reset 1", "without the fix: PROTOCOL_ERROR (1), what etcdctl endpoint status met");
  t.is(await rawRequest(true), "answered");
});

test("gRPC messages keep every field through the binary encoding (names match etcd's protos)", (t) => {
  const header = { cluster_id: "17323387873815904199", member_id: "3", revision: "9007199254740993", raft_term: "2" };
  const range = {
    header,
    kvs: [{ key: Buffer.from([0xff, 0x00, 0x80]).toString("base64"), create_revision: "3", mod_revision: "4", version: "2", value: "AMMo/w==", lease: "7587" }],
    more: true,
    count: "1",
  };
  t.deepEqual(roundTrip("KV", "Range", "response", range), range);
  const status = { header, version: "3.4.0", dbSize: "6", leader: "3", raftIndex: "4", raftTerm: "1", raftAppliedIndex: "4", dbSizeInUse: "6", isLearner: true };
  t.deepEqual(roundTrip("Maintenance", "Status", "response", status), status);
  const watch = { header, watch_id: "-1", created: true, canceled: true, compact_revision: "5", cancel_reason: "x", events: [{ type: "DELETE", kv: { key: "Zm9v", mod_revision: "9" }, prev_kv: { key: "Zm9v", value: "YQ==" } }] };
  t.deepEqual(roundTrip("Watch", "Watch", "response", watch), watch);
  const members = { header, members: [{ ID: "1", name: "n1", peerURLs: ["http://127.0.0.1:1"], clientURLs: ["http://127.0.0.1:2"], isLearner: true }] };
  t.deepEqual(roundTrip("Cluster", "MemberList", "response", members), members);
  const lease = { header, ID: "7", TTL: "10", grantedTTL: "60", keys: ["Zm9v"] };
  t.deepEqual(roundTrip("Lease", "LeaseTimeToLive", "response", lease), lease);
  // A name the proto does not know is dropped: the check above would catch an encoder's typo.
  t.notDeepEqual(roundTrip("KV", "Put", "response", { header, prevKv: { key: "Zm9v" } }), { header, prevKv: { key: "Zm9v" } });
});
