import type { TLSSocket } from 'node:tls';
import type { Socket } from 'socket.io';
import type { ChannelEnd } from '../../shared/protocol/in-memory-channel.js';

/**
 * A client's connection as the coordinator sees it, whatever carries it: a socket.io socket
 * (process and remote clients) or an in-memory channel (virtual clients).
 */
export interface ClientConnection {
  readonly connected: boolean;
  /** The common name of the verified client certificate (mutual TLS); undefined without one. */
  certificateName(): string | undefined;
  /** The transport connection's id (engine.io), for the connection limits; undefined in memory. */
  readonly transportId: string | undefined;
  emit(type: string, frame: Uint8Array): void;
  /** Ends the connection for good: the client does not reconnect. */
  close(): void;
  /** Cuts the connection the way a network fault does: the client reconnects on its own. */
  drop(): void;
  onMessage(handler: (type: string, frame: unknown) => void): void;
  onClose(handler: (reason: string) => void): void;
  /**
   * Bytes that crossed this connection's TCP socket so far (socket.io, engine.io and WebSocket
   * framing, the HTTP upgrade and pings included), or undefined where there is no socket.
   */
  wireBytes(): { read: number; written: number } | undefined;
}

/** A socket.io socket as a ClientConnection. */
export function socketConnection(socket: Socket): ClientConnection {
  return {
    get connected() {
      return socket.connected;
    },
    // engine.io types the id as private; it is the id the engine's connection event carries.
    transportId: (socket.conn as unknown as { id: string }).id,
    certificateName: () => peerCertificateName(socket.request.socket),
    emit: (type, frame) => {
      socket.emit(type, frame);
    },
    close: () => {
      socket.disconnect(true);
    },
    drop: () => socket.conn.close(),
    onMessage: (handler) => socket.onAny((event: string, frame: unknown) => handler(event, frame)),
    onClose: (handler) => socket.on('disconnect', (reason) => handler(reason)),
    wireBytes: () => {
      const tcp = socket.request.socket;
      return { read: tcp.bytesRead, written: tcp.bytesWritten };
    },
  };
}

/** The coordinator's end of an in-memory channel as a ClientConnection. */
export function channelConnection(end: ChannelEnd): ClientConnection {
  return {
    get connected() {
      return end.connected;
    },
    transportId: undefined,
    certificateName: () => undefined,
    emit: (type, frame) => end.send(type, frame),
    close: () => end.close('io server disconnect'),
    drop: () => end.close('transport close'),
    onMessage: (handler) => end.onMessage(handler),
    onClose: (handler) => end.onClose(handler),
    wireBytes: () => undefined,
  };
}

/** The common name of a TLS peer's verified certificate, or undefined (no TLS, no certificate, not verified). */
export function peerCertificateName(socket: unknown): string | undefined {
  const tls = socket as Partial<TLSSocket>;
  if (typeof tls.getPeerCertificate !== 'function' || !tls.authorized) return undefined;
  const cn = tls.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' ? cn : Array.isArray(cn) ? cn[0] : undefined;
}
