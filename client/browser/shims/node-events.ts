/**
 * `node:events` for the browser bundle of the client: the socket.io parser's decoder is an event
 * emitter (socket.io-client listens for its `decoded` events), and this is all it uses of one.
 */
type Listener = (...args: unknown[]) => void;

export class EventEmitter {
  private readonly listenersByEvent = new Map<string, Listener[]>();

  on(event: string, listener: Listener): this {
    this.listenersByEvent.set(event, [...(this.listenersByEvent.get(event) ?? []), listener]);
    return this;
  }

  addListener(event: string, listener: Listener): this {
    return this.on(event, listener);
  }

  once(event: string, listener: Listener): this {
    const once: Listener = (...args) => {
      this.off(event, once);
      listener(...args);
    };
    return this.on(event, once);
  }

  off(event: string, listener: Listener): this {
    this.listenersByEvent.set(event, (this.listenersByEvent.get(event) ?? []).filter((l) => l !== listener));
    return this;
  }

  removeListener(event: string, listener: Listener): this {
    return this.off(event, listener);
  }

  removeAllListeners(event?: string): this {
    if (event === undefined) this.listenersByEvent.clear();
    else this.listenersByEvent.delete(event);
    return this;
  }

  emit(event: string, ...args: unknown[]): boolean {
    const listeners = this.listenersByEvent.get(event) ?? [];
    for (const l of [...listeners]) l(...args);
    return listeners.length > 0;
  }
}
