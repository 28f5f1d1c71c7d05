// What a plugin route sees of a WebSocket it accepted (RouteDefinition.websocket in core/spec/plugin.ts).
// Text and binary frames in, text frames out; the core owns the socket, its limits and its shutdown.

/** The accepted socket, as the route's handler drives it. */
export interface WebSocketPeer {
  /**
   * Sends one text frame. False when it was not taken whole at once: the frame is buffered (or, once
   * the socket is closed, dropped), and the sender should wait for `drained()` before sending more.
   */
  send(text: string): boolean;
  /** Resolves once the socket's send buffer is empty again, or at once when it is empty or the socket closed. */
  drained(): Promise<void>;
  /** Closes the socket (1000 unless a code is given); later sends are dropped. */
  close(code?: number, reason?: string): void;
  readonly closed: boolean;
}

/**
 * A route's side of one socket. `message` gets each frame as it arrives (text as a string); frames
 * over KEYWAY_MAX_BODY_BYTES close the socket with 1009 before they reach it.
 */
export interface WebSocketHandler {
  open?(peer: WebSocketPeer): void;
  message(peer: WebSocketPeer, data: string | Uint8Array): void;
  /** The socket is gone, whoever closed it: stop any work done for it. */
  close?(peer: WebSocketPeer, code: number, reason: string): void;
  /**
   * The gateway is shutting down: take no new work and settle once what is in flight has ended (the
   * drain deadline ends streams); the core then closes the socket with 1001.
   */
  stop?(peer: WebSocketPeer): void | Promise<void>;
}
