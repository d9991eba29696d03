/** A motion event as the detector raises it and as it is stored, searched and sent in alerts. */
export interface MotionEvent {
  id: number;
  camera: string;
  kind: 'motion';
  /** The first moving frame, ms since the epoch. */
  startMs: number;
  /** The last moving frame (plus one frame interval); null while the event goes on. */
  endMs: number | null;
  /** The highest score seen: the moving share of the zone that moved most (0–1). */
  peakScore: number;
  /** The include zones it moved in ('all' when the camera has none). */
  zones: string[];
  /** Where it moved at its peak, as shares of the picture. */
  box: { x: number; y: number; w: number; h: number } | null;
  /** The detector node that saw it. */
  node: string;
  /** Whether a JPEG thumbnail is stored. */
  hasThumbnail: boolean;
  /** The protected range keeping its footage from retention, when an operator flagged it. */
  protectedId: number | null;
}

/** What is published on the bus (Channel.events) when an event starts, grows or ends. */
export interface EventNotice {
  phase: 'start' | 'update' | 'end';
  event: MotionEvent;
}
