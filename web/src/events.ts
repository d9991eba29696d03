import type { ServerMessage } from './api';

/** First reconnect delay of the event socket, ms; doubled at each failure up to the cap. */
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5_000;

export interface EventHandlers {
  onMessage: (msg: ServerMessage) => void;
  /** Called with true once the socket is open and false when it drops. */
  onConnection: (open: boolean) => void;
  /**
   * Asked after every close, before a new attempt; false ends the subscription. The browser hides why an
   * upgrade was refused (a 401 and a dead server look the same), so the caller checks the session.
   * Default: always reconnect.
   */
  shouldReconnect?: () => Promise<boolean>;
}

/**
 * Listens to /api/ws and reconnects with backoff until the returned function is called or
 * `shouldReconnect` says no. The backoff resets when the server's snapshot arrives, i.e. when the server
 * is really serving.
 */
export function subscribeEvents({ onMessage, onConnection, shouldReconnect }: EventHandlers): () => void {
  const url = new URL('/api/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws: WebSocket | null = null;
  let backoffMs = BACKOFF_MIN_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const open = (): void => {
    const socket = new WebSocket(url);
    ws = socket;
    socket.onopen = () => onConnection(true);
    socket.onmessage = (ev) => {
      let msg: ServerMessage;
      try {
        msg = JSON.parse(String(ev.data)) as ServerMessage;
      } catch {
        return; // not ours to crash on
      }
      if (msg.type === 'snapshot') backoffMs = BACKOFF_MIN_MS;
      onMessage(msg);
    };
    socket.onclose = () => {
      if (closed || ws !== socket) return;
      onConnection(false);
      const delay = backoffMs;
      backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
      timer = setTimeout(() => {
        if (!shouldReconnect) return open();
        shouldReconnect().then(
          (again) => {
            if (again && !closed) open();
          },
          // The check itself failed: the server may come back, so keep trying.
          () => {
            if (!closed) open();
          },
        );
      }, delay);
    };
  };
  open();

  return () => {
    closed = true;
    clearTimeout(timer);
    ws?.close();
  };
}
