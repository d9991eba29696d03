import { useSyncExternalStore } from 'react';
import { api, type EventView, type ServerMessage } from './api';

/** An event message of /api/ws. */
export type EventMessage = Extract<ServerMessage, { type: 'event' }>;

// One store for the page, fed by the event socket that useCameras holds: the events in progress per
// camera (for the live tiles), and the messages themselves for pages that list events.
let active: ReadonlyMap<string, EventView> = new Map();
const activeListeners = new Set<() => void>();
const messageListeners = new Set<(msg: EventMessage) => void>();
/** Events that ended since the last resync, so a slow look-up does not bring them back. */
let ended = new Set<number>();

function setActive(next: ReadonlyMap<string, EventView>): void {
  active = next;
  for (const l of activeListeners) l();
}

/** Takes one event message of the socket: tells the listeners and keeps the camera's event in progress. */
export function publishEvent(msg: EventMessage): void {
  const { event } = msg;
  const cur = active.get(event.camera);
  if (msg.phase === 'end' || event.endMs !== null) {
    ended.add(event.id);
    // Only the event shown ends; an older one ending late does not clear a newer one.
    if (cur && cur.id === event.id) {
      const next = new Map(active);
      next.delete(event.camera);
      setActive(next);
    }
  } else if (!cur || cur.id <= event.id) {
    setActive(new Map(active).set(event.camera, event));
  }
  for (const l of messageListeners) {
    try {
      l(msg);
    } catch {
      // One page's mistake must not stop the others from hearing of the event.
    }
  }
}

/** Calls `listener` with every event message; returns the unsubscribe function. */
export function onEventMessage(listener: (msg: EventMessage) => void): () => void {
  messageListeners.add(listener);
  return () => messageListeners.delete(listener);
}

/** Events in progress when the socket (re)connects: looked up so a tile does not wait for the next update. */
const SEED_LIMIT = 100;

/**
 * Forgets the events in progress (the socket dropped, so their ends may have been missed) and asks the
 * server which are still going. Needs camera:archive; without it the tiles learn of events as they start.
 */
export function resyncActiveEvents(mayList: boolean): void {
  setActive(new Map());
  ended = new Set();
  if (!mayList) return;
  api.events({ limit: SEED_LIMIT }).then(
    (page) => {
      const next = new Map(active);
      // Newest first: the first in-progress event of a camera is the one to show.
      for (const e of page.events) if (e.endMs === null && !ended.has(e.id) && !next.has(e.camera)) next.set(e.camera, e);
      setActive(next);
    },
    () => {}, // no permission, or no events API on this server: the socket's messages will do
  );
}

function subscribeActive(onChange: () => void): () => void {
  activeListeners.add(onChange);
  return () => activeListeners.delete(onChange);
}

/** The camera's event in progress, or null; re-renders when it starts, changes and ends. */
export function useActiveEvent(camera: string): EventView | null {
  return useSyncExternalStore(subscribeActive, () => active.get(camera) ?? null);
}
