/**
 * The public surface of the peer transport: TcpTransport (the production Transport), and the frame,
 * message and handshake layers it is built from, exported for tests, tools and the chaos runner.
 */
export { reconnectDelayMs, type BackoffLimits } from "./backoff.ts";
export {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FRAME_PAYLOAD_BYTES_MAX_DEFAULT,
  FRAME_TYPE_CODES,
  FRAME_TYPES,
  FRAME_VERSION,
  FrameDecoder,
  FrameError,
  HANDSHAKE_PAYLOAD_BYTES_MAX,
  type Frame,
  type FrameDecoderOptions,
  type FrameType,
} from "./frame.ts";
export {
  AcceptorHandshake,
  describeRefusal,
  DialerHandshake,
  PROTOCOL_VERSION,
  REFUSAL_CODES,
  type HandshakeOutcome,
  type HandshakeRefusal,
  type HandshakeSettings,
  type HandshakeStep,
  type RefusalCode,
} from "./handshake.ts";
export { checkMessageRoute, decodeMessage, encodeMessage, MessageDecodeError, type DecodeMessageOptions, type MessageRoute } from "./message-codec.ts";
export { OutboundQueue, type OutboundQueueLimits } from "./outbound-queue.ts";
export {
  formatAddress,
  TcpTransport,
  TRANSPORT_LIMITS_DEFAULT,
  TransportError,
  type ListenAddress,
  type PeerEvent,
  type PeerStatus,
  type TcpTransportCallbacks,
  type TcpTransportOptions,
  type TransportConfig,
  type TransportLimits,
  type TransportLogger,
  type TransportTls,
} from "./tcp-transport.ts";
export type { TransportCounters } from "./transport-counters.ts";
