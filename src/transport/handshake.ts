/**
 * The handshake that opens every peer connection, as two pure state machines (no sockets, no timers),
 * so tests and the fuzzer can drive them frame by frame.
 *
 *     dialer                                   acceptor
 *       hello {version, cluster, ids, auth, nonceD, listenAddress}  ->
 *                                         checks version, cluster id, node ids, auth mode, address
 *       <-  challenge {version, cluster, id, auth, nonceA, proofA}
 *     checks the same, and proofA
 *       proof {proofD}                               ->
 *                                         checks proofD
 *       <-  accept {}
 *
 * With pgraft.auth = on, proofX = HMAC-SHA256(secret, transcript(X)), where the transcript is a JSON
 * array of a domain label, the protocol version, the direction ("acceptor" or "dialer"), the auth
 * mode, the cluster id, both node ids and both nonces. The secret never travels. Fresh 32-byte nonces
 * on both sides make every proof good for one connection only (a recorded proof fails against a new
 * nonce), the direction label stops a proof being reflected back to its author, and a nonce equal to
 * our own is refused outright. The handshake authenticates the two ends of a connection; it does not
 * protect the messages that follow from someone who can alter traffic in flight: that is TLS's job.
 *
 * With pgraft.auth = off, the proofs are empty strings but cluster id, node ids and version are still
 * checked, so a misconfigured node is refused with a reason instead of corrupting a cluster.
 *
 * Versions. Version 2 added the dialer's listen address to the hello (and to the transcript), so that
 * an acceptor that does not know the dialer's id yet (it lags behind the configuration that added it)
 * can accept it and dial it back to reply. An acceptor answers a version 1 hello (an older dialer,
 * no address) in version 1, as before; such a dialer must be a known member. A dialer speaks version 2
 * only, so an older acceptor refuses it with a protocol_version refusal that says so.
 *
 * Either side refuses with a `refuse` frame carrying a code and a reason worded so that both operators
 * can read it (it names both nodes rather than saying "this node"), then closes the connection.
 */
import { createHmac, randomBytes as cryptoRandomBytes, timingSafeEqual } from "node:crypto";
import { assert } from "../assert.ts";
import type { PeerAuthentication } from "../config/index.ts";
import { parseHostAndPort, type HostAndPort } from "../config/setting-values.ts";
import type { NodeId } from "../core/types.ts";
import type { Frame, FrameType } from "./frame.ts";
import { ObjectReader, PayloadError, parseJsonPayload, quote } from "./payload-reader.ts";

/** The peer protocol this code speaks when it dials (the hello payload's `protocolVersion`). */
export const PROTOCOL_VERSION = 2;
/** The oldest version an acceptor still answers (in that version): 1 has no listen address. */
export const PROTOCOL_VERSION_MIN = 1;
/** "host:port" with a 253-character host name, or a bracketed IPv6 address, and a 5-digit port. */
export const LISTEN_ADDRESS_LENGTH_MAX = 261;
export const NONCE_BYTES = 32;
/** HMAC-SHA256 output, as lowercase hex. */
export const PROOF_HEX_LENGTH = 64;
export const CLUSTER_ID_LENGTH_MAX = 255;
export const REFUSAL_REASON_LENGTH_MAX = 1000;

const TRANSCRIPT_LABEL = "pgraft peer handshake";
const ACCEPTED_VERSIONS: readonly number[] = Array.from({ length: PROTOCOL_VERSION - PROTOCOL_VERSION_MIN + 1 }, (_, i) => PROTOCOL_VERSION_MIN + i);

export type AuthMode = PeerAuthentication["mode"];
const AUTH_MODES: readonly AuthMode[] = ["off", "shared_secret"];

export type RefusalCode =
  | "protocol_version"
  | "cluster_id"
  | "unknown_node"
  | "self"
  | "wrong_node"
  | "auth_mode"
  | "proof"
  | "nonce"
  | "malformed"
  | "unexpected_frame"
  | "timeout"
  /** The dialer was a member and a committed configuration removed it (etcd's "member removed"). */
  | "removed"
  | "other";

export const REFUSAL_CODES: readonly RefusalCode[] = [
  "protocol_version",
  "cluster_id",
  "unknown_node",
  "self",
  "wrong_node",
  "auth_mode",
  "proof",
  "nonce",
  "malformed",
  "unexpected_frame",
  "timeout",
  "removed",
  "other",
];

export interface HandshakeRefusal {
  readonly code: RefusalCode;
  /** A sentence naming both nodes where known, readable on either side. */
  readonly reason: string;
  /** "local": this node refused the peer; "peer": the peer refused this node. */
  readonly by: "local" | "peer";
  /** With code "removed": the refuser's commit index when it refused (see HandshakeSettings.removed). */
  readonly commitIndex?: number;
}

export type HandshakeOutcome =
  | { readonly state: "pending" }
  | { readonly state: "established"; readonly peerId: NodeId }
  | { readonly state: "refused"; readonly refusal: HandshakeRefusal };

/** What one input produced: frames to write (in order), then the handshake's state. */
export interface HandshakeStep {
  readonly outgoing: readonly Frame[];
  readonly outcome: HandshakeOutcome;
}

export interface HandshakeSettings {
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** Every node id of pgraft.initial_cluster, this node's included. */
  readonly memberIds: readonly NodeId[];
  /**
   * Where peers reach this node ("host:port", its advertised peer address): sent in the hello, so an
   * acceptor that does not know this node yet can dial it back.
   */
  readonly listenAddress: string;
  readonly authentication: PeerAuthentication;
  /**
   * Nodes a committed configuration removed, with this node's commit index when it learned so. They
   * are refused with code "removed" once they have proved who they are, so that a removed node can
   * trust the news and stop (a forged refusal could otherwise stop any node).
   */
  readonly removed?: ReadonlyMap<NodeId, number>;
  /** Nonce source; node:crypto's randomBytes when omitted. Tests inject their own. */
  readonly randomBytes?: (size: number) => Uint8Array;
}

const PENDING: HandshakeOutcome = Object.freeze({ state: "pending" });

/** What both hello-like frames (hello and challenge) carry. */
interface Greeting {
  readonly protocolVersion: number;
  readonly clusterId: string;
  readonly nodeId: NodeId;
  readonly auth: AuthMode;
  readonly nonce: string;
}

/**
 * Checks an advertised listen address: undefined when it can be dialed, else what is wrong with it.
 * Any host is allowed (a loopback address or a name is the operator's choice); the form is strict.
 */
export function checkListenAddress(text: string): { readonly ok: true; readonly value: HostAndPort } | { readonly ok: false; readonly problem: string } {
  if (text.length > LISTEN_ADDRESS_LENGTH_MAX) return { ok: false, problem: `it is longer than ${LISTEN_ADDRESS_LENGTH_MAX} characters` };
  if (text !== text.trim()) return { ok: false, problem: "it has leading or trailing white space" };
  const parsed = parseHostAndPort(text);
  return parsed.ok ? { ok: true, value: parsed.value } : { ok: false, problem: parsed.problem };
}

/** A refusal found while checking a frame; turned into a refuse frame by the state machines. */
class Refusal extends Error {
  constructor(
    readonly code: RefusalCode,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** The parts both state machines share: settings, nonce, proofs, greeting checks and refusals. */
abstract class Handshake {
  readonly settings: HandshakeSettings;
  readonly nonce: string;
  /** The protocol version of this conversation: PROTOCOL_VERSION, or an older dialer's. */
  protected version = PROTOCOL_VERSION;
  readonly #memberIds: ReadonlySet<NodeId>;
  #outcome: HandshakeOutcome = PENDING;

  constructor(settings: HandshakeSettings) {
    assert(settings.memberIds.includes(settings.nodeId), `handshake: node ${settings.nodeId} is not among the members`);
    assert(settings.clusterId.length <= CLUSTER_ID_LENGTH_MAX, "handshake: cluster id too long");
    const address = checkListenAddress(settings.listenAddress);
    assert(address.ok, `handshake: this node's listen address ${quote(settings.listenAddress)} cannot be advertised: ${address.ok ? "" : address.problem}`);
    this.settings = settings;
    this.#memberIds = new Set(settings.memberIds);
    const bytes = (settings.randomBytes ?? cryptoRandomBytes)(NONCE_BYTES);
    assert(bytes.length === NONCE_BYTES, `handshake: randomBytes() returned ${bytes.length} bytes, not ${NONCE_BYTES}`);
    this.nonce = Buffer.from(bytes).toString("hex");
  }

  get outcome(): HandshakeOutcome {
    return this.#outcome;
  }

  get finished(): boolean {
    return this.#outcome.state !== "pending";
  }

  /** Feeds one frame from the peer. Never throws for bad input: a bad frame is a refusal. */
  receive(frame: Frame): HandshakeStep {
    assert(!this.finished, `handshake: receive() after the handshake ${this.#outcome.state}`);
    if (frame.type === "refuse") return this.#finish([], { state: "refused", refusal: readPeerRefusal(frame.payload) });
    try {
      return this.handle(frame);
    } catch (error) {
      if (error instanceof Refusal) return this.refuse(error.code, error.reason);
      if (error instanceof PayloadError) return this.refuse("malformed", `${this.peerName()} sent a malformed ${frame.type} frame: ${error.problem}`);
      throw error;
    }
  }

  /** The handshake did not finish in time: refuse, so the peer learns why the connection closes. */
  timeout(timeoutMs: number): HandshakeStep {
    assert(!this.finished, "handshake: timeout() after the handshake finished");
    return this.refuse("timeout", `the handshake between ${this.peerName()} and node ${this.settings.nodeId} did not finish within ${timeoutMs} ms`);
  }

  protected abstract handle(frame: Frame): HandshakeStep;

  /** "node 3", or "the peer" before its hello is known. */
  protected abstract peerName(): string;

  protected refuse(code: RefusalCode, reason: string, commitIndex?: number): HandshakeStep {
    const text = reason.length > REFUSAL_REASON_LENGTH_MAX ? `${reason.slice(0, REFUSAL_REASON_LENGTH_MAX - 3)}...` : reason;
    const extra = commitIndex === undefined ? {} : { commitIndex };
    const frame = jsonFrame("refuse", { code, reason: text, ...extra });
    return this.#finish([frame], { state: "refused", refusal: { code, reason: text, by: "local", ...extra } });
  }

  protected establish(outgoing: readonly Frame[], peerId: NodeId): HandshakeStep {
    return this.#finish(outgoing, { state: "established", peerId });
  }

  protected pending(outgoing: readonly Frame[]): HandshakeStep {
    return { outgoing, outcome: PENDING };
  }

  #finish(outgoing: readonly Frame[], outcome: HandshakeOutcome): HandshakeStep {
    assert(outcome.state !== "pending", "handshake: finishing with a pending outcome");
    this.#outcome = outcome;
    return { outgoing, outcome };
  }

  protected expectType(frame: Frame, expected: FrameType): void {
    if (frame.type !== expected) {
      throw new Refusal("unexpected_frame", `${this.peerName()} sent a ${frame.type} frame during the handshake where a ${expected} frame was due`);
    }
  }

  /**
   * Reads a hello or a challenge; checks version first, so a newer peer's layout is not "malformed".
   * `versions`: the versions this side answers; `extraKeys`: the keys beyond the common ones, by version.
   */
  protected readGreeting(
    frame: Frame,
    versions: readonly number[],
    extraKeys: (version: number) => readonly string[],
  ): { greeting: Greeting; reader: ObjectReader } {
    const reader = new ObjectReader(parseJsonPayload(frame.payload), "");
    const protocolVersion = reader.integer("protocolVersion", { min: 0 });
    const nodeHint = reader.raw("nodeId");
    const who = Number.isSafeInteger(nodeHint) ? `node ${String(nodeHint)}` : "the peer";
    if (!versions.includes(protocolVersion)) {
      const spoken = versions.length === 1 ? `only version ${versions[0]}` : `only versions ${versions.join(" and ")}`;
      throw new Refusal(
        "protocol_version",
        `${who} speaks peer protocol version ${protocolVersion} but node ${this.settings.nodeId} speaks ${spoken}; run the same pgraft version on every node`,
      );
    }
    reader.expectKeys(["protocolVersion", "clusterId", "nodeId", "auth", "nonce", ...extraKeys(protocolVersion)]);
    const greeting: Greeting = {
      protocolVersion,
      clusterId: reader.string("clusterId", CLUSTER_ID_LENGTH_MAX),
      nodeId: reader.integer("nodeId", { min: 1 }),
      auth: reader.literal("auth", AUTH_MODES),
      nonce: reader.hex("nonce", NONCE_BYTES * 2),
    };
    return { greeting, reader };
  }

  /**
   * Checks everything a greeting says about the peer except which node it should be. `unknownAllowed`:
   * a node id this node does not know is accepted (an acceptor that can dial the peer back).
   */
  protected checkGreeting(greeting: Greeting, unknownAllowed: boolean): void {
    const self = this.settings;
    const peer = `node ${greeting.nodeId}`;
    if (greeting.clusterId !== self.clusterId) {
      throw new Refusal(
        "cluster_id",
        `${peer} presented cluster id ${quote(greeting.clusterId)} but node ${self.nodeId} is in cluster ${quote(self.clusterId)}; give every node of one cluster the same pgraft.cluster_id`,
      );
    }
    if (greeting.nodeId === self.nodeId) {
      throw new Refusal(
        "self",
        `the peer presented node id ${greeting.nodeId}, which is node ${self.nodeId}'s own id; two nodes share a pgraft.name, or pgraft.initial_cluster gives another member this node's address`,
      );
    }
    if (!unknownAllowed && !this.isKnown(greeting.nodeId) && !(this.settings.removed?.has(greeting.nodeId) ?? false)) {
      const older = greeting.protocolVersion < PROTOCOL_VERSION ? ` and speaks peer protocol version ${greeting.protocolVersion}, which cannot tell node ${self.nodeId} where to reply` : "";
      throw new Refusal(
        "unknown_node",
        `${peer} is not a member known to node ${self.nodeId} (members: ${[...this.#memberIds].join(", ")})${older}; ` +
          "a founding member must be in pgraft.initial_cluster, a new node must be added on the leader (pgraft member add) before it can connect, and a removed node should be stopped",
      );
    }
    if (greeting.auth !== self.authentication.mode) {
      throw new Refusal(
        "auth_mode",
        `${peer} has pgraft.auth ${describeAuth(greeting.auth)} but node ${self.nodeId} has it ${describeAuth(self.authentication.mode)}; set pgraft.auth the same on every node`,
      );
    }
    if (greeting.nonce === this.nonce) {
      throw new Refusal("nonce", `${peer} echoed node ${self.nodeId}'s own nonce; the connection may be reflected back to its origin`);
    }
  }

  /** Whether `nodeId` is among the members this handshake began with. */
  protected isKnown(nodeId: NodeId): boolean {
    return this.#memberIds.has(nodeId);
  }

  /** The HMAC for `direction`; from version 2 on the transcript ends with the dialer's listen address. */
  protected proof(
    direction: "dialer" | "acceptor",
    dialerId: NodeId,
    acceptorId: NodeId,
    dialerNonce: string,
    acceptorNonce: string,
    dialerAddress: string | undefined,
  ): string {
    const authentication = this.settings.authentication;
    if (authentication.mode === "off") return "";
    assert((this.version >= 2) === (dialerAddress !== undefined), "handshake: a listen address in the transcript of version 1, or none in version 2");
    const fields: unknown[] = [
      TRANSCRIPT_LABEL,
      this.version,
      direction,
      authentication.mode,
      this.settings.clusterId,
      dialerId,
      acceptorId,
      dialerNonce,
      acceptorNonce,
    ];
    if (dialerAddress !== undefined) fields.push(dialerAddress);
    const transcript = JSON.stringify(fields);
    return createHmac("sha256", authentication.secret).update(transcript).digest("hex");
  }

  /** Reads a proof field (empty with auth off) and compares it in constant time. */
  protected checkProof(reader: ObjectReader, expected: string, peerId: NodeId): void {
    if (this.settings.authentication.mode === "off") {
      const received = reader.string("proof", 0);
      assert(received === "" && expected === "", "handshake: a proof with authentication off");
      return;
    }
    const received = reader.hex("proof", PROOF_HEX_LENGTH);
    const same = timingSafeEqual(Buffer.from(received, "hex"), Buffer.from(expected, "hex"));
    if (!same) {
      throw new Refusal(
        "proof",
        `node ${peerId} could not prove it holds node ${this.settings.nodeId}'s secret (or presented a proof from another connection); copy the same pgraft.auth_secret_file to every node`,
      );
    }
  }
}

/** The side that opened the TCP connection. It knows which node it meant to reach. */
export class DialerHandshake extends Handshake {
  readonly targetNodeId: NodeId;
  #state: "new" | "awaiting_challenge" | "awaiting_accept" = "new";

  constructor(settings: HandshakeSettings, targetNodeId: NodeId) {
    super(settings);
    assert(targetNodeId !== settings.nodeId, "DialerHandshake: dialing this node itself");
    assert(settings.memberIds.includes(targetNodeId), `DialerHandshake: node ${targetNodeId} is not a member`);
    this.targetNodeId = targetNodeId;
  }

  /** The hello to send once the connection is open. */
  start(): HandshakeStep {
    assert(this.#state === "new", "DialerHandshake: start() twice");
    this.#state = "awaiting_challenge";
    const { clusterId, nodeId, authentication } = this.settings;
    const hello = {
      protocolVersion: PROTOCOL_VERSION,
      clusterId,
      nodeId,
      targetNodeId: this.targetNodeId,
      auth: authentication.mode,
      nonce: this.nonce,
      listenAddress: this.settings.listenAddress,
    };
    return this.pending([jsonFrame("hello", hello)]);
  }

  protected peerName(): string {
    return `node ${this.targetNodeId}`;
  }

  protected handle(frame: Frame): HandshakeStep {
    assert(this.#state !== "new", "DialerHandshake: receive() before start()");
    if (this.#state === "awaiting_challenge") {
      this.expectType(frame, "challenge");
      return this.#answerChallenge(frame);
    }
    this.expectType(frame, "accept");
    return this.establish([], this.targetNodeId);
  }

  #answerChallenge(frame: Frame): HandshakeStep {
    const { greeting, reader } = this.readGreeting(frame, [PROTOCOL_VERSION], () => ["proof"]);
    this.checkGreeting(greeting, false);
    if (greeting.nodeId !== this.targetNodeId) {
      throw new Refusal(
        "wrong_node",
        `node ${this.settings.nodeId} dialed the address of node ${this.targetNodeId} but reached node ${greeting.nodeId}; correct pgraft.initial_cluster`,
      );
    }
    const self = this.settings.nodeId;
    const address = this.settings.listenAddress;
    this.checkProof(reader, this.proof("acceptor", self, greeting.nodeId, this.nonce, greeting.nonce, address), greeting.nodeId);
    this.#state = "awaiting_accept";
    return this.pending([jsonFrame("proof", { proof: this.proof("dialer", self, greeting.nodeId, this.nonce, greeting.nonce, address) })]);
  }
}

/** The side that accepted the TCP connection. It learns who the peer is from the hello. */
export class AcceptorHandshake extends Handshake {
  #state: "awaiting_hello" | "awaiting_proof" = "awaiting_hello";
  #peer: { readonly nodeId: NodeId; readonly nonce: string; readonly listenAddress: string | undefined; readonly dialBack: HostAndPort | undefined } | undefined;

  /**
   * Where the peer listens, from its hello (version 2 on): how a transport that does not know the peer
   * yet reaches it to reply. Undefined before the hello, or from an older dialer.
   */
  get peerListenAddress(): HostAndPort | undefined {
    return this.#peer?.dialBack;
  }

  protected peerName(): string {
    return this.#peer === undefined ? "the peer" : `node ${this.#peer.nodeId}`;
  }

  protected handle(frame: Frame): HandshakeStep {
    if (this.#state === "awaiting_hello") {
      this.expectType(frame, "hello");
      return this.#answerHello(frame);
    }
    this.expectType(frame, "proof");
    const peer = this.#peer;
    assert(peer !== undefined, "AcceptorHandshake: proof before hello");
    const reader = new ObjectReader(parseJsonPayload(frame.payload), "");
    reader.expectKeys(["proof"]);
    this.checkProof(reader, this.proof("dialer", peer.nodeId, this.settings.nodeId, peer.nonce, this.nonce, peer.listenAddress), peer.nodeId);
    const removedAt = this.settings.removed?.get(peer.nodeId);
    if (removedAt !== undefined) {
      return this.refuse(
        "removed",
        `node ${peer.nodeId} was removed from the cluster (node ${this.settings.nodeId} holds the committed configuration that removed it, commit index ${removedAt}); ` +
          "stop it, wipe its data directory, and add it again (pgraft member add) if it should rejoin",
        removedAt,
      );
    }
    return this.establish([{ type: "accept", payload: new Uint8Array(0) }], peer.nodeId);
  }

  #answerHello(frame: Frame): HandshakeStep {
    const { greeting, reader } = this.readGreeting(frame, ACCEPTED_VERSIONS, (version) => (version >= 2 ? ["targetNodeId", "listenAddress"] : ["targetNodeId"]));
    this.version = greeting.protocolVersion;
    const targetNodeId = reader.integer("targetNodeId", { min: 1 });
    const listenAddress = greeting.protocolVersion >= 2 ? reader.string("listenAddress", LISTEN_ADDRESS_LENGTH_MAX) : undefined;
    // A version 2 dialer says where it listens, so an unknown one can be dialed back (once its proof holds).
    this.checkGreeting(greeting, listenAddress !== undefined);
    const self = this.settings;
    if (targetNodeId !== self.nodeId) {
      throw new Refusal(
        "wrong_node",
        `node ${greeting.nodeId} dialed the address of node ${targetNodeId} but reached node ${self.nodeId}; correct pgraft.initial_cluster`,
      );
    }
    let dialBack: HostAndPort | undefined;
    if (listenAddress !== undefined) {
      const checked = checkListenAddress(listenAddress);
      if (!checked.ok) {
        throw new Refusal(
          "malformed",
          `node ${greeting.nodeId} advertised the listen address ${quote(listenAddress)}, which node ${self.nodeId} cannot dial back: ${checked.problem}; ` +
            `give node ${greeting.nodeId} a valid host:port in pgraft.initial_cluster (or the address it was added with)`,
        );
      }
      dialBack = checked.value;
    }
    this.#peer = { nodeId: greeting.nodeId, nonce: greeting.nonce, listenAddress, dialBack };
    this.#state = "awaiting_proof";
    const challenge = {
      protocolVersion: greeting.protocolVersion,
      clusterId: self.clusterId,
      nodeId: self.nodeId,
      auth: self.authentication.mode,
      nonce: this.nonce,
      proof: this.proof("acceptor", greeting.nodeId, self.nodeId, greeting.nonce, this.nonce, listenAddress),
    };
    return this.pending([jsonFrame("challenge", challenge)]);
  }
}

/** Renders a refusal for a log line on either side. `remote` names the other end. */
export function describeRefusal(refusal: HandshakeRefusal, remote: string): string {
  return refusal.by === "local" ? `Refused ${remote}: ${refusal.reason}` : `${capitalize(remote)} refused this node: ${refusal.reason}`;
}

function capitalize(text: string): string {
  return text.length === 0 ? text : text[0]!.toUpperCase() + text.slice(1);
}

function readPeerRefusal(payload: Uint8Array): HandshakeRefusal {
  try {
    const reader = new ObjectReader(parseJsonPayload(payload), "");
    reader.expectKeys(reader.has("commitIndex") ? ["code", "reason", "commitIndex"] : ["code", "reason"]);
    const code = reader.string("code", 64);
    const reason = reader.string("reason", REFUSAL_REASON_LENGTH_MAX);
    const known = (REFUSAL_CODES as readonly string[]).includes(code) ? (code as RefusalCode) : "other";
    const commitIndex = reader.has("commitIndex") ? reader.integer("commitIndex", { min: 0 }) : undefined;
    return { code: known, reason: printable(reason), by: "peer", ...(commitIndex === undefined ? {} : { commitIndex }) };
  } catch (error) {
    if (!(error instanceof PayloadError)) throw error;
    return { code: "malformed", reason: `the refusal could not be read: ${error.problem}`, by: "peer" };
  }
}

/** A peer's text goes into our logs: keep control characters (terminal escapes, newlines) out. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}

function describeAuth(mode: AuthMode): string {
  return mode === "off" ? "off" : "on (shared secret)";
}

function jsonFrame(type: FrameType, body: unknown): Frame {
  return { type, payload: Buffer.from(JSON.stringify(body), "utf8") };
}
