/**
 * Counters a TcpTransport keeps for metrics (src/metrics maps them to pgraft_transport_* series). All
 * are totals since the transport was created; they only grow.
 */
export interface TransportCounters {
  /** Bytes written to and read from peer sockets, handshakes and pings included (after TLS). */
  bytesSent: number;
  bytesReceived: number;
  /** Raft messages written to a socket, and delivered to onMessage. */
  messagesSent: number;
  messagesReceived: number;
  /** Raft messages given to send() that will never be written: queue overflow, unknown peer, too large, closed. */
  messagesDropped: number;
  /** Outbound dials started. */
  connectionAttempts: number;
  /** Connections that completed the handshake, by who dialed. */
  connectionsOutbound: number;
  connectionsInbound: number;
  /** Handshakes this node refused (timeouts included), and handshakes peers refused. */
  refusalsSent: number;
  refusalsReceived: number;
  /** Malformed, oversized or unexpected frames and messages; each closed its connection. */
  decodeErrors: number;
  /** TLS handshakes that failed on either side. */
  tlsErrors: number;
}

export function zeroCounters(): TransportCounters {
  return {
    bytesSent: 0,
    bytesReceived: 0,
    messagesSent: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    connectionAttempts: 0,
    connectionsOutbound: 0,
    connectionsInbound: 0,
    refusalsSent: 0,
    refusalsReceived: 0,
    decodeErrors: 0,
    tlsErrors: 0,
  };
}
