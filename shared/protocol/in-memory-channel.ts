type MessageHandler = (type: string, frame: Uint8Array) => void;
type CloseHandler = (reason: string) => void;

/**
 * One end of an in-memory duplex channel carrying (type, frame) messages: the same encoded frames
 * a socket would carry, delivered asynchronously and in order, so that virtual clients exercise
 * the same code paths, and count the same bytes, as clients over socket.io.
 *
 * @example
 * const [client, coordinator] = ChannelEnd.pair();
 * coordinator.onMessage((type, frame) => ...);
 * client.send('hello', encodeMessage({ ... }));
 */
export class ChannelEnd {
  private peer: ChannelEnd | undefined;
  private messageHandler: MessageHandler = () => {};
  private readonly closeHandlers: CloseHandler[] = [];
  private open = true;

  static pair(): [ChannelEnd, ChannelEnd] {
    const a = new ChannelEnd();
    const b = new ChannelEnd();
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  get connected(): boolean {
    return this.open;
  }

  send(type: string, frame: Uint8Array): void {
    const peer = this.peer;
    if (!this.open || !peer) return;
    setImmediate(() => {
      if (peer.open) peer.messageHandler(type, frame);
    });
  }

  onMessage(handler: MessageHandler): void {
    this.messageHandler = handler;
  }

  onClose(handler: CloseHandler): void {
    this.closeHandlers.push(handler);
  }

  /** Closes both ends; each side hears `reason` (asynchronously, after messages already sent). */
  close(reason: string): void {
    for (const end of [this, this.peer]) {
      if (!end?.open) continue;
      end.open = false;
      setImmediate(() => {
        for (const h of end.closeHandlers) h(reason);
      });
    }
  }
}
