import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { api, type Camera, type ServerMessage } from './api';
import { sessionStillValid } from './auth';
import { subscribeEvents } from './events';
import { publishEvent, resyncActiveEvents } from './liveEvents';

interface CamerasState {
  /** null until the first list or snapshot. */
  byId: Map<string, Camera> | null;
  /** True once the socket's snapshot arrived; from then on the socket is the source of truth. */
  fromSocket: boolean;
}

type Action = ServerMessage | { type: 'list'; cameras: Camera[] } | { type: 'placements'; cameras: Camera[] };

/**
 * The event socket tells of status and config changes, not of placement: a camera moved to another node
 * keeps its state. Placements are read again (GET /api/cameras) shortly after a camera's state or error
 * changes, which is when a move or a placement problem shows, and every so often besides.
 */
const PLACEMENT_DEBOUNCE_MS = 300;
const PLACEMENT_MIN_GAP_MS = 1_000;
const PLACEMENT_POLL_MS = 10_000;

function samePlacement(a: Camera['placement'], b: Camera['placement']): boolean {
  return a === b || (!!a && !!b && a.cameraNode === b.cameraNode && a.sfu === b.sfu && a.problem === b.problem && a.since === b.since);
}

function reduce(state: CamerasState, action: Action): CamerasState {
  switch (action.type) {
    case 'snapshot':
      return { byId: new Map(action.cameras.map((c) => [c.id, c])), fromSocket: true };
    case 'list':
      // The GET only fills the gap while the socket is slow; a later snapshot is newer.
      return state.fromSocket ? state : { byId: new Map(action.cameras.map((c) => [c.id, c])), fromSocket: false };
    case 'camera': {
      const cur = state.byId?.get(action.camera.id);
      // The same change comes from the socket and from our own REST call; keep the newest.
      if (cur && cur.version > action.camera.version) return state;
      return { ...state, byId: new Map(state.byId).set(action.camera.id, action.camera) };
    }
    case 'placements': {
      if (!state.byId) return state;
      let byId: Map<string, Camera> | null = null;
      for (const c of action.cameras) {
        const cur = state.byId.get(c.id);
        if (!cur || samePlacement(cur.placement, c.placement)) continue;
        byId ??= new Map(state.byId);
        byId.set(c.id, { ...cur, placement: c.placement });
      }
      return byId ? { ...state, byId } : state;
    }
    case 'camera-removed': {
      if (!state.byId?.has(action.id)) return state;
      const byId = new Map(state.byId);
      byId.delete(action.id);
      return { ...state, byId };
    }
    case 'status': {
      const cur = state.byId?.get(action.status.id);
      if (!cur) return state;
      return { ...state, byId: new Map(state.byId).set(cur.id, { ...cur, status: action.status }) };
    }
    case 'event':
      // Not camera state: the live events store keeps them (see onMessage).
      return state;
  }
}

export interface CamerasView {
  /** Sorted by id; null until loaded. */
  cameras: Camera[] | null;
  /** Whether the event socket is open. */
  connected: boolean;
  /** Applies a change this client made, without waiting for the socket's copy. */
  apply: (change: ServerMessage) => void;
}

/**
 * The cameras and their live status: GET /api/cameras at once, then the event socket, while `enabled`
 * (signed in, with cameras:read). The socket is reconnected only while the session holds. The socket's
 * detection events go to the live events store; `mayListEvents` (camera:archive) lets it look up the
 * events in progress at each (re)connection.
 */
export function useCameras(enabled: boolean, mayListEvents = false): CamerasView {
  const [state, dispatch] = useReducer(reduce, { byId: null, fromSocket: false });
  const [connected, setConnected] = useState(false);
  // The socket's handler compares a status with the one shown, without re-subscribing at every change.
  const shown = useRef(state.byId);
  shown.current = state.byId;

  useEffect(() => {
    if (!enabled) return;
    let active = true;
    api.listCameras().then(
      (cameras) => active && dispatch({ type: 'list', cameras }),
      () => {}, // the socket will bring them
    );

    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastRead = 0;
    const readPlacements = (): void => {
      if (timer !== undefined) return;
      const wait = Math.max(PLACEMENT_DEBOUNCE_MS, lastRead + PLACEMENT_MIN_GAP_MS - Date.now());
      timer = setTimeout(() => {
        timer = undefined;
        lastRead = Date.now();
        api.listCameras().then(
          (cameras) => active && dispatch({ type: 'placements', cameras }),
          () => {}, // the next change or poll tries again
        );
      }, wait);
    };
    const poll = setInterval(() => {
      if (document.visibilityState === 'visible') readPlacements();
    }, PLACEMENT_POLL_MS);

    const onMessage = (msg: ServerMessage): void => {
      if (msg.type === 'event') return publishEvent(msg);
      // A snapshot starts every connection: what happened while it was down is looked up again.
      if (msg.type === 'snapshot') resyncActiveEvents(mayListEvents);
      if (msg.type === 'status') {
        const cur = shown.current?.get(msg.status.id)?.status;
        if (cur && (cur.state !== msg.status.state || cur.lastError !== msg.status.lastError)) readPlacements();
      }
      dispatch(msg);
    };
    const unsubscribe = subscribeEvents({ onMessage, onConnection: setConnected, shouldReconnect: sessionStillValid });
    return () => {
      active = false;
      clearTimeout(timer);
      clearInterval(poll);
      unsubscribe();
      setConnected(false);
    };
  }, [enabled, mayListEvents]);

  const cameras = useMemo(
    () => (state.byId ? [...state.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) : null),
    [state.byId],
  );
  const apply = useCallback((change: ServerMessage) => dispatch(change), []);
  return { cameras, connected, apply };
}
