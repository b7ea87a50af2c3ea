/**
 * The HTTP API of the Toxiproxy-compatible server (chaos/toxiproxy), driven by the real client library
 * toxiproxy-node-client wherever it has a call for it, and by plain fetch where the statuses, headers
 * and error bodies themselves are the point. Each test starts its own server and echo upstream on
 * ephemeral 127.0.0.1 ports, and checks what the API says against what the TCP proxies then do.
 */
import test from "ava";
import * as net from "node:net";
import { ToxiproxyError, type Latency } from "toxiproxy-node-client";
import { BODY_BYTES_MAX, REQUEST_ID_HEADER } from "../../chaos/toxiproxy/index.ts";
import {
  connectError,
  createProxy,
  echoRoundTripMs,
  portOf,
  request,
  startEcho,
  startToxiproxy,
  TestClient,
  toxic,
  WAIT_MS,
  waitFor,
} from "./toxiproxy-harness.ts";

const json = (body: unknown): RequestInit => ({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

test("getVersion() answers the version as JSON with a newline, as the real server does", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const text = await toxiproxy.client.getVersion();
  t.true(text.endsWith("\n"));
  t.regex((JSON.parse(text) as { version: string }).version, /^2\.\d+\.\d+/);
  const raw = await request(`${toxiproxy.url}/version`);
  t.is(raw.headers.get("content-type"), "application/json;charset=utf-8");
});

test("createProxy() answers 201 with enabled true, no toxics, and the ephemeral port written back into listen", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const raw = await request(`${toxiproxy.url}/proxies`, json({ name: "raw", listen: "127.0.0.1:0", upstream: echo.address }));
  t.is(raw.status, 201);
  const body = JSON.parse(raw.text) as Record<string, unknown>;
  t.deepEqual(Object.keys(body), ["name", "listen", "upstream", "enabled", "toxics"]);
  t.is(body["enabled"], true);
  t.deepEqual(body["toxics"], []);
  t.regex(body["listen"] as string, /^127\.0\.0\.1:[1-9]\d*$/);

  const proxy = await createProxy(toxiproxy, "db", echo);
  t.true(proxy.enabled);
  const client = await TestClient.connect(t, portOf(proxy));
  await echoRoundTripMs(client, Buffer.from("hello"));
  t.is(client.received.toString(), "hello");
});

test("listen addresses ':0', 'localhost:0' and no listen at all bind an ephemeral port on loopback", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const empty = await toxiproxy.client.createProxy({ name: "empty", listen: ":0", upstream: echo.address });
  const localhost = await toxiproxy.client.createProxy({ name: "localhost", listen: "localhost:0", upstream: echo.address });
  const omitted = await request(`${toxiproxy.url}/proxies`, json({ name: "omitted", upstream: echo.address }));
  t.is(omitted.status, 201);
  for (const listen of [empty.listen, localhost.listen, (JSON.parse(omitted.text) as { listen: string }).listen]) t.regex(listen, /^127\.0\.0\.1:[1-9]\d*$/);
  const refused = await request(`${toxiproxy.url}/proxies`, json({ name: "public", listen: "0.0.0.0:0", upstream: echo.address }));
  t.is(refused.status, 400);
  t.regex(JSON.parse(refused.text).error as string, /not a loopback address/);
});

test("get() and getAll() list proxies by name; remove() answers 204 and closes the listener", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const b = await createProxy(toxiproxy, "b", echo);
  await createProxy(toxiproxy, "a", echo);
  t.deepEqual(Object.keys(await toxiproxy.client.getAll()), ["a", "b"]);
  const fetched = await toxiproxy.client.get("b");
  t.deepEqual(fetched.toJson(), b.toJson());

  const deleted = await request(`${toxiproxy.url}/proxies/b`, { method: "DELETE" });
  t.is(deleted.status, 204);
  t.is(deleted.text, "");
  t.deepEqual(Object.keys(await toxiproxy.client.getAll()), ["a"]);
  t.is(await connectError(portOf(b)), "ECONNREFUSED");
  await t.throwsAsync(toxiproxy.client.get("b"), { instanceOf: ToxiproxyError, message: /404/ });
});

test("update() with enabled false closes open connections and refuses new ones; enabled true opens the same address again", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  const open = await TestClient.connect(t, portOf(proxy));
  await echoRoundTripMs(open, Buffer.from("before"));

  const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
  t.false(disabled.enabled);
  t.is(disabled.listen, proxy.listen);
  await open.waitForClose();
  t.is(await connectError(portOf(proxy)), "ECONNREFUSED");

  const enabled = await disabled.update({ enabled: true, listen: disabled.listen, upstream: disabled.upstream });
  t.true(enabled.enabled);
  t.is(enabled.listen, proxy.listen);
  const again = await TestClient.connect(t, portOf(enabled));
  await echoRoundTripMs(again, Buffer.from("after"));
  t.is(again.received.toString(), "after");
});

test("update() of the upstream restarts the proxy: open connections close and new ones reach the new upstream", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const first = await startEcho(t);
  const second = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", first);
  const open = await TestClient.connect(t, portOf(proxy));
  await echoRoundTripMs(open, Buffer.from("x"));

  const moved = await proxy.update({ enabled: true, listen: proxy.listen, upstream: second.address });
  t.is(moved.upstream, second.address);
  await open.waitForClose();
  const client = await TestClient.connect(t, portOf(moved));
  await echoRoundTripMs(client, Buffer.from("y"));
  t.is(second.sockets.length, 1);
  t.is(first.sockets.length, 1);

  const patched = await request(`${toxiproxy.url}/proxies/db`, { method: "PATCH", body: JSON.stringify({ enabled: false }) });
  t.is(patched.status, 200);
  t.like(JSON.parse(patched.text), { name: "db", enabled: false, upstream: second.address });
});

test("populate() answers 201, keeps a proxy whose addresses match (toxics too), replaces one whose addresses differ, and reads enabled null as true", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const other = await startEcho(t);
  const kept = await createProxy(toxiproxy, "kept", echo);
  await kept.addToxic(toxic<Latency>("latency", { latency: 10, jitter: 0 }));
  const replaced = await createProxy(toxiproxy, "replaced", echo);
  await replaced.addToxic(toxic<Latency>("latency", { latency: 10, jitter: 0 }));

  const raw = await request(
    `${toxiproxy.url}/populate`,
    json([
      { name: "kept", listen: kept.listen, upstream: echo.address },
      { name: "replaced", listen: "127.0.0.1:0", upstream: other.address },
      { name: "fresh", listen: "127.0.0.1:0", upstream: echo.address, enabled: null },
      { name: "off", listen: "127.0.0.1:0", upstream: echo.address, enabled: false },
    ]),
  );
  t.is(raw.status, 201);
  const proxies = (JSON.parse(raw.text) as { proxies: { name: string; listen: string; enabled: boolean; toxics: unknown[]; upstream: string }[] }).proxies;
  t.deepEqual(
    proxies.map((proxy) => [proxy.name, proxy.enabled, proxy.toxics.length, proxy.upstream]),
    [
      ["kept", true, 1, echo.address],
      ["replaced", true, 0, other.address],
      ["fresh", true, 0, echo.address],
      ["off", false, 0, echo.address],
    ],
  );
  const viaClient = await toxiproxy.client.populate([{ name: "fresh", listen: proxies[2]!.listen, upstream: echo.address }]);
  t.deepEqual(Object.keys(viaClient), ["fresh"]);

  const missing = await request(`${toxiproxy.url}/populate`, json([{ name: "ok", upstream: echo.address }, { name: "no-upstream" }]));
  t.is(missing.status, 400);
  t.deepEqual(JSON.parse(missing.text), { error: "missing required field: upstream at proxy 2", status: 400, proxies: null });
  t.false(Object.keys(await toxiproxy.client.getAll()).includes("ok"));
});

test("reset() answers 204, enables every proxy again and removes every toxic, from open connections too", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const on = await createProxy(toxiproxy, "on", echo);
  const off = await createProxy(toxiproxy, "off", echo);
  await on.addToxic(toxic("timeout", { timeout: 0 }));
  await off.update({ enabled: false, listen: off.listen, upstream: off.upstream });
  const client = await TestClient.connect(t, portOf(on));
  client.socket.write("dropped");
  await waitFor(() => (echo.sockets[0]?.bytesRead ?? 0) >= 7, WAIT_MS, "the echo upstream to read the data");

  const raw = await request(`${toxiproxy.url}/reset`, { method: "POST" });
  t.is(raw.status, 204);
  await toxiproxy.client.reset();
  const all = await request(`${toxiproxy.url}/proxies`);
  const proxies = JSON.parse(all.text) as Record<string, { enabled: boolean; toxics: unknown[] }>;
  t.true(proxies["on"]!.enabled && proxies["off"]!.enabled);
  t.deepEqual([proxies["on"]!.toxics, proxies["off"]!.toxics], [[], []]);
  // Removing a timeout toxic closes the connections it held, as the real server does.
  await client.waitForClose();
  const fresh = await TestClient.connect(t, portOf(off));
  await echoRoundTripMs(fresh, Buffer.from("back"));
  t.is(fresh.received.toString(), "back");
});

test("toxics: add answers 200 with the defaults, get and list show it, update merges attributes and keeps toxicity, delete answers 204", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  const base = `${toxiproxy.url}/proxies/db/toxics`;

  const created = await request(base, json({ type: "latency", attributes: { latency: 100 } }));
  t.is(created.status, 200);
  t.is(created.text, JSON.stringify({ attributes: { latency: 100, jitter: 0 }, name: "latency_downstream", type: "latency", stream: "downstream", toxicity: 1 }));
  const upstream = await proxy.addToxic(toxic("slicer", { average_size: 10, size_variation: 2, delay: 0 }, { stream: "upstream", name: "cut", toxicity: 0.5 }));
  t.deepEqual(upstream.toJson(), { attributes: { average_size: 10, size_variation: 2, delay: 0 }, name: "cut", stream: "upstream", toxicity: 0.5, type: "slicer" });

  const listed = JSON.parse((await request(base)).text) as { name: string }[];
  t.deepEqual(listed.map((item) => item.name), ["cut", "latency_downstream"], "upstream toxics are listed before downstream ones");
  const fetched = await proxy.getToxic<Latency>("latency_downstream");
  t.deepEqual(fetched.attributes, { latency: 100, jitter: 0 });

  const updated = await upstream.update({ ...upstream.toJson(), attributes: { delay: 5 } as never, toxicity: undefined as never });
  t.deepEqual(updated.attributes, { average_size: 10, size_variation: 2, delay: 5 } as never);
  t.is(updated.toxicity, 0.5);
  const patched = await request(`${base}/cut`, { method: "PATCH", body: JSON.stringify({ toxicity: 0.25 }) });
  t.like(JSON.parse(patched.text), { toxicity: 0.25, attributes: { average_size: 10, size_variation: 2, delay: 5 } });

  const deleted = await request(`${base}/cut`, { method: "DELETE" });
  t.is(deleted.status, 204);
  await fetched.remove();
  t.deepEqual(JSON.parse((await request(base)).text), []);
});

test("errors answer 404 and 409 with {error, status} and a newline, sent as text/plain as Go's http.Error does", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  await proxy.addToxic(toxic("latency", { latency: 1, jitter: 0 }));

  const cases: [string, RequestInit, number, RegExp][] = [
    ["/proxies/nope", {}, 404, /^proxy not found/],
    ["/proxies/nope/toxics", {}, 404, /^proxy not found/],
    ["/proxies/db/toxics/nope", {}, 404, /^toxic not found/],
    ["/proxies/db/toxics/nope", { method: "DELETE" }, 404, /^toxic not found/],
    ["/proxies", json({ name: "db", upstream: echo.address }), 409, /^proxy already exists/],
    ["/proxies/db/toxics", json({ type: "latency" }), 409, /^toxic already exists/],
  ];
  for (const [path, init, status, message] of cases) {
    const raw = await request(`${toxiproxy.url}${path}`, init);
    t.is(raw.status, status, path);
    t.true(raw.text.endsWith("}\n"), path);
    const body = JSON.parse(raw.text) as { error: string; status: number };
    t.deepEqual(Object.keys(body), ["error", "status"]);
    t.is(body.status, status);
    t.regex(body.error, message);
    t.is(raw.headers.get("content-type"), "text/plain; charset=utf-8");
  }
  await t.throwsAsync(toxiproxy.client.createProxy({ name: "db", listen: "127.0.0.1:0", upstream: echo.address }), { instanceOf: ToxiproxyError, message: /409/ });
});

test("bad bodies answer 400 with a message that names the problem and what is allowed", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  await createProxy(toxiproxy, "db", echo);
  const toxics = "/proxies/db/toxics";
  const cases: [string, RequestInit, RegExp][] = [
    ["/proxies", json({ upstream: echo.address }), /^missing required field: name$/],
    ["/proxies", json({ name: "x" }), /^missing required field: upstream$/],
    ["/proxies", json({ name: "x", upstream: "nowhere" }), /^bad request body: upstream must be host:port/],
    ["/proxies", { method: "POST", body: "{not json" }, /^bad request body: not valid JSON/],
    ["/proxies", { method: "POST" }, /^bad request body: a proxy must be a JSON object, got no body/],
    ["/proxies", json({ name: "x", upstream: echo.address, enabled: "yes" }), /enabled must be true or false/],
    [toxics, json({ type: "latency", stream: "sideways" }), /^stream was invalid, can be either upstream or downstream/],
    [toxics, json({ type: "down" }), /^invalid toxic type: got "down", known types are latency, bandwidth/],
    [toxics, json({ type: "latency", attributes: { latency: -1 } }), /latency attribute latency must be an integer from 0 to 3600000 \(ms\), got -1/],
    [toxics, json({ type: "latency", attributes: { latency: 1.5 } }), /latency attribute latency must be an integer/],
    [toxics, json({ type: "latency", attributes: { latancy: 5 } }), /a latency toxic has no attribute "latancy": its attributes are latency, jitter/],
    [toxics, json({ type: "slicer", attributes: { average_size: 10, size_variation: 10 } }), /size_variation must be smaller than average_size/],
    [toxics, json({ type: "slicer", attributes: {} }), /slicer attribute average_size must be from 1/],
    [toxics, json({ type: "bandwidth", attributes: { rate: 1 }, toxicity: 1.5 }), /toxicity must be a number from 0 to 1/],
  ];
  for (const [path, init, message] of cases) {
    const raw = await request(`${toxiproxy.url}${path}`, init);
    t.is(raw.status, 400, `${path} ${String(init.body)}`);
    const body = JSON.parse(raw.text) as { error: string; status: number };
    t.is(body.status, 400);
    t.regex(body.error, message);
  }
  t.deepEqual(Object.keys(await toxiproxy.client.getAll()), ["db"], "no bad body created anything");
});

test("a browser's User-Agent gets 403, unknown routes 404, wrong methods 405, an oversized body 413, and every response a request id", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const browser = await request(`${toxiproxy.url}/proxies`, { headers: { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)" } });
  t.is(browser.status, 403);
  t.is(browser.text, "User agent not allowed\n");
  const unknown = await request(`${toxiproxy.url}/nothing`);
  t.is(unknown.status, 404);
  t.is(unknown.text, "404 page not found\n");
  const wrongMethod = await request(`${toxiproxy.url}/version`, { method: "DELETE" });
  t.is(wrongMethod.status, 405);
  const oversized = await request(`${toxiproxy.url}/proxies`, { method: "POST", body: "x".repeat(BODY_BYTES_MAX + 1) });
  t.is(oversized.status, 413);
  t.regex(JSON.parse(oversized.text).error as string, /larger than 1048576 bytes/);

  const ok = await request(`${toxiproxy.url}/proxies`);
  const ids = [browser, unknown, wrongMethod, oversized, ok].map((response) => response.headers.get(REQUEST_ID_HEADER));
  for (const id of ids) t.regex(id ?? "", /^[0-9a-f]{20}$/);
  t.is(new Set(ids).size, ids.length, "request ids are unique");
});

test("a listen port already taken answers 500 with the system's reason, and the proxy is not created", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const raw = await request(`${toxiproxy.url}/proxies`, json({ name: "clash", listen: echo.address, upstream: echo.address }));
  t.is(raw.status, 500);
  t.regex(JSON.parse(raw.text).error as string, new RegExp(`^listen tcp ${echo.address}: bind: address already in use`));
  t.deepEqual(Object.keys(await toxiproxy.client.getAll()), []);
});

test("a client of a proxy whose upstream refuses is closed at once, and the proxy serves again once pointed elsewhere", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const closedPort = await new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
  const proxy = await toxiproxy.client.createProxy({ name: "dead", listen: "127.0.0.1:0", upstream: `127.0.0.1:${closedPort}` });
  const client = await TestClient.connect(t, portOf(proxy));
  await client.waitForClose();
  t.is(client.received.length, 0);
  const moved = await proxy.update({ enabled: true, listen: proxy.listen, upstream: echo.address });
  const working = await TestClient.connect(t, portOf(moved));
  await echoRoundTripMs(working, Buffer.from("fine"));
  t.is(working.received.toString(), "fine");
});

test("limits: at most 64 toxics per proxy and 1000 proxies per server, each refused with a 400 that says so", async (t) => {
  const toxiproxy = await startToxiproxy(t);
  const echo = await startEcho(t);
  const proxy = await createProxy(toxiproxy, "db", echo);
  for (let i = 0; i < 64; i++) await proxy.addToxic(toxic("noop" as never, {}, { name: `noop ${i}` }));
  const extra = await request(`${toxiproxy.url}/proxies/db/toxics`, json({ type: "noop", name: "one too many" }));
  t.is(extra.status, 400);
  t.regex(JSON.parse(extra.text).error as string, /already has 64 toxics, the most this server allows/);
  // Noop toxics pass everything.
  const client = await TestClient.connect(t, portOf(proxy));
  await echoRoundTripMs(client, Buffer.from("through 64 noops"));

  const many = Array.from({ length: 1000 }, (_, i) => ({ name: `p${i}`, listen: "127.0.0.1:0", upstream: echo.address, enabled: false }));
  const refused = await request(`${toxiproxy.url}/populate`, json(many));
  t.is(refused.status, 400);
  t.regex(JSON.parse(refused.text).error as string, /at most 1000 proxies and has 1/);
  t.is((await request(`${toxiproxy.url}/populate`, json(many.slice(1)))).status, 201);
  t.is(Object.keys(await toxiproxy.client.getAll()).length, 1000);
});
