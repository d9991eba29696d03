import { useCallback, useEffect, useMemo, useReducer, useState } from 'react';
import { api, type Camera, type ServerMessage } from './api';
import { sessionStillValid } from './auth';
import { subscribeEvents } from './events';

interface CamerasState {
  /** null until the first list or snapshot. */
  byId: Map<string, Camera> | null;
  /** True once the socket's snapshot arrived; from then on the socket is the source of truth. */
  fromSocket: boolean;
}

type Action = ServerMessage | { type: 'list'; cameras: Camera[] };

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
 * (signed in, with cameras:read). The socket is reconnected only while the session holds.
 */
export function useCameras(enabled: boolean): CamerasView {
  const [state, dispatch] = useReducer(reduce, { byId: null, fromSocket: false });
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    if (!enabled) return;
    let active = true;
    api.listCameras().then(
      (cameras) => active && dispatch({ type: 'list', cameras }),
      () => {}, // the socket will bring them
    );
    const unsubscribe = subscribeEvents({ onMessage: dispatch, onConnection: setConnected, shouldReconnect: sessionStillValid });
    return () => {
      active = false;
      unsubscribe();
      setConnected(false);
    };
  }, [enabled]);

  const cameras = useMemo(
    () => (state.byId ? [...state.byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) : null),
    [state.byId],
  );
  const apply = useCallback((change: ServerMessage) => dispatch(change), []);
  return { cameras, connected, apply };
}
