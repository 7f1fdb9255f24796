import type { ClientMessageType, ClientToCoordinator, CoordinatorMessageType, CoordinatorToClient, Outgoing } from '../../shared/protocol/messages.js';
import type { CoordinatorLink, IncomingHandler } from '../coordinator-link.js';

export interface LinkObserver {
  sent?<K extends ClientMessageType>(type: K, body: Outgoing<ClientToCoordinator[K]>): void;
  received?<K extends CoordinatorMessageType>(type: K, message: CoordinatorToClient[K]): void;
  connected?(): void;
}

/**
 * A link that lets a page watch what its client node sends and receives (missions, reports,
 * tables) without the node knowing: everything else goes to the link it wraps.
 *
 * @example
 * const link = new ObservedLink(new SocketCoordinatorLink(url), { received: (type, m) => show(type, m) });
 */
export class ObservedLink implements CoordinatorLink {
  constructor(private readonly inner: CoordinatorLink, private readonly observer: LinkObserver) {}

  get meter(): CoordinatorLink['meter'] {
    return this.inner.meter;
  }

  send<K extends ClientMessageType>(type: K, body: Outgoing<ClientToCoordinator[K]>): void {
    this.inner.send(type, body);
    this.observer.sent?.(type, body);
  }

  onConnect(handler: () => void): void {
    this.inner.onConnect(() => {
      this.observer.connected?.();
      handler();
    });
  }

  onMessage(handler: IncomingHandler): void {
    this.inner.onMessage((type, message) => {
      this.observer.received?.(type, message);
      handler(type, message);
    });
  }

  onInvalid(handler: (type: string, reason: string) => void): void {
    this.inner.onInvalid(handler);
  }

  onGiveUp(handler: (reason: string) => void): void {
    this.inner.onGiveUp(handler);
  }

  close(): void {
    this.inner.close();
  }
}
