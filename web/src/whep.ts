import { readApiError, reportRefusal } from './api';

/**
 * A WHEP viewer (RFC 9725) on the browser's own RTCPeerConnection, that keeps itself connected.
 *
 * It reconnects, forever, when the connection fails, stays disconnected, stops rendering frames, or the
 * offer is refused for a passing reason; it always closes the old peer connection and deletes its session
 * first, so the server never holds a viewer nobody watches. It gives up only when the server says the
 * viewer may not watch (401: signed out; 403: not allowed), since retrying cannot change that.
 *
 * A stream that was flowing and stops is most likely a node that went away (the cluster moves the camera
 * to another in about a second), so it is given up on quickly and a new offer goes out at once, and the
 * server's "not placed yet" answers are retried every second while the camera moves: the picture is back
 * within about 3 s of a failover.
 */

export const PlayerState = {
  /** The first offer is on its way. */
  Connecting: 'connecting',
  /** A frame has been rendered, and frames keep coming. */
  Live: 'live',
  /** Lost the stream or the offer failed for a passing reason; a new attempt is scheduled. */
  Reconnecting: 'reconnecting',
  /**
   * The server refused the offer: retried slowly after 404 or 406, not at all after 401 (signed out) or
   * 403 (not allowed). `error` says why.
   */
  Error: 'error',
  /** Not started, or stopped. */
  Stopped: 'stopped',
} as const;
export type PlayerState = (typeof PlayerState)[keyof typeof PlayerState];

export interface PlayerStats {
  /** Frames decoded per second (inbound-rtp `framesPerSecond`); null until reported. */
  fps: number | null;
  /** Received bitrate in kbit/s, from `bytesReceived` between two samples; null until two samples. */
  bitrateKbps: number | null;
  /** Decoded frame size in pixels; null until the first frame. */
  width: number | null;
  height: number | null;
  /** RTP packets lost on this connection (cumulative); null until reported. */
  packetsLost: number | null;
}

export interface WhepPlayerOptions {
  /** Called when the state or the error changes. */
  onState?: (state: PlayerState, error: string | null) => void;
  /** Called about once a second while connected. */
  onStats?: (stats: PlayerStats) => void;
}

export const EMPTY_STATS: PlayerStats = { fps: null, bitrateKbps: null, width: null, height: null, packetsLost: null };

/** First retry delay, ms; doubled at each failure. */
const BACKOFF_MIN_MS = 500;
/** Largest retry delay for passing failures, ms. */
const BACKOFF_MAX_MS = 5_000;
/** Live this long, ms, and the next failure starts again from the smallest delay. */
const HEALTHY_MS = 10_000;
/** `disconnected` can heal by itself (ICE consent); this long, ms, and we start over. */
const DISCONNECTED_MS = 2_000;
/**
 * A new session's first frame gets this long, ms, from the answer; so does a page where frames are only
 * counted, not seen (hidden, or no requestVideoFrameCallback).
 */
const FIRST_FRAME_MS = 3_000;
/** Once a session has shown frames, this long without one, ms, and it is taken as stalled. */
const LIVE_STALL_MS = 1_000;
/** A slow source (a few frames per second) gets this many of its frame intervals, up to FIRST_FRAME_MS. */
const STALL_FRAMES = 3;
/** Weight of a new interval in the running mean of frame intervals. */
const GAP_SMOOTHING = 0.1;
/** Stall checks, ms. */
const STALL_CHECK_MS = 250;
/** After the picture was lost, a 503 with Retry-After (the camera is moving) is retried after at most this, ms… */
const MOVING_RETRY_MS = 1_000;
/** …for this long, ms; then the usual backoff, so a camera that stays away is not asked every second. */
const MOVING_WINDOW_MS = 10_000;
/** Retry delay after a refusal that waiting will not fix quickly (404, 406…), ms. */
const REFUSED_RETRY_MS = 10_000;
/** Longest wait for the answer to an offer, ms. */
const OFFER_TIMEOUT_MS = 10_000;
/** Stats, ms. */
const TICK_MS = 1_000;

export class WhepPlayer {
  readonly #video: HTMLVideoElement;
  readonly #url: string;
  readonly #opts: WhepPlayerOptions;

  #running = false;
  #state: PlayerState = PlayerState.Stopped;
  #error: string | null = null;
  #stats: PlayerStats = EMPTY_STATS;

  // Bumped at every connect and teardown: callbacks of a replaced connection see a stale number and do nothing.
  #generation = 0;
  #pc: RTCPeerConnection | null = null;
  /** Absolute URL of the current WHEP session (the POST's Location). */
  #session: string | null = null;
  #backoffMs = BACKOFF_MIN_MS;
  /** Refused for good (401, 403): no more attempts until stop() and start(). */
  #halted = false;

  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #disconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #tickTimer: ReturnType<typeof setInterval> | undefined;
  #stallTimer: ReturnType<typeof setInterval> | undefined;
  #stallChecking = false;
  #frameHandle: number | null = null;

  /**
   * performance.now() of the last sign of a frame (rendered, or counted by the decoder), or of the
   * answer while there was none in this session.
   */
  #lastFrameAt = 0;
  /** Whether the current session has shown a frame: from then on a short silence is a stall. */
  #sessionFramed = false;
  /** performance.now() of the last rendered frame of this session, and the mean interval between them, ms. */
  #lastRenderAt: number | null = null;
  #frameGapMs: number | null = null;
  /** performance.now() when the picture was lost after being live; null: it was not (or long ago). */
  #lostAt: number | null = null;
  #liveSince: number | null = null;
  #lastBytes: { bytes: number; at: number } | null = null;
  #lastFramesDecoded = 0;

  constructor(video: HTMLVideoElement, url: string, opts: WhepPlayerOptions = {}) {
    this.#video = video;
    this.#url = url;
    this.#opts = opts;
  }

  get state(): PlayerState {
    return this.#state;
  }

  /** Why the last attempt failed, or null. */
  get error(): string | null {
    return this.#error;
  }

  get stats(): PlayerStats {
    return this.#stats;
  }

  /** Starts playing; it keeps trying until stop(). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#halted = false;
    window.addEventListener('pagehide', this.#onPageHide);
    this.#tickTimer = setInterval(() => void this.#tick(), TICK_MS);
    this.#stallTimer = setInterval(() => void this.#checkStall(), STALL_CHECK_MS);
    this.#lostAt = null;
    this.#setState(PlayerState.Connecting, null);
    void this.#connect();
  }

  /** Stops playing and ends the session. Idempotent. */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    window.removeEventListener('pagehide', this.#onPageHide);
    clearInterval(this.#tickTimer);
    clearInterval(this.#stallTimer);
    this.#teardown();
    this.#video.srcObject = null;
    this.#stats = EMPTY_STATS;
    this.#opts.onStats?.(this.#stats);
    this.#setState(PlayerState.Stopped, null);
  }

  async #connect(): Promise<void> {
    const gen = ++this.#generation;
    let pc: RTCPeerConnection;
    try {
      pc = new RTCPeerConnection();
    } catch (error) {
      // Browsers cap the number of peer connections; one may be freed by the time we retry.
      this.#retry(`cannot create a peer connection: ${(error as Error).message}`);
      return;
    }
    this.#pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.ontrack = (ev) => {
      if (gen !== this.#generation) return;
      askForLowLatency(ev.receiver);
      this.#video.srcObject = ev.streams[0] ?? new MediaStream([ev.track]);
      // autoplay should do it; play() covers a browser that waits for a new source to be told.
      this.#video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (gen !== this.#generation) return;
      clearTimeout(this.#disconnectTimer);
      if (pc.connectionState === 'failed') this.#retry('connection failed');
      else if (pc.connectionState === 'disconnected') {
        this.#disconnectTimer = setTimeout(() => {
          if (gen === this.#generation && pc.connectionState === 'disconnected') this.#retry('connection lost');
        }, DISCONNECTED_MS);
      }
    };

    let res: Response;
    try {
      // 1. Offer. It goes out at once, without waiting for ICE gathering: the server is ICE-lite and
      //    lists all its candidates in the answer, so ours are found by its checks (peer-reflexive).
      await pc.setLocalDescription(await pc.createOffer());
      res = await fetch(this.#url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription?.sdp ?? '',
        // A server that takes the connection but never answers must not stop the retries.
        signal: AbortSignal.timeout(OFFER_TIMEOUT_MS),
      });
    } catch (error) {
      const why = (error as Error).name === 'TimeoutError' ? 'the server did not answer in time' : `cannot reach the server: ${(error as Error).message}`;
      if (gen === this.#generation) this.#retry(why);
      return;
    }
    const location = res.headers.get('Location');
    const session = location ? new URL(location, res.url).href : null;
    if (gen !== this.#generation) {
      // Stopped or replaced while the offer was in flight: the session it made is nobody's.
      if (res.ok && session) deleteSession(session);
      return;
    }

    if (res.ok) {
      // 2. Answer (201 Created, Location = the session). The stall clock starts now, so the first
      //    frame gets FIRST_FRAME_MS to arrive.
      this.#session = session;
      this.#lastFrameAt = performance.now();
      try {
        const sdp = await res.text();
        if (gen !== this.#generation) return;
        await pc.setRemoteDescription({ type: 'answer', sdp });
      } catch (error) {
        if (gen === this.#generation) this.#retry(`bad answer: ${(error as Error).message}`);
        return;
      }
      this.#watchFrames(gen);
      return;
    }

    const refusal = await readApiError(res);
    if (gen !== this.#generation) return;
    if (res.status === 401 || res.status === 403) {
      // Signed out, a sign-in step owed, or not allowed: the app is told (and sends the user to sign in);
      // asking again with the same cookie would only be refused again.
      reportRefusal(refusal);
      this.#halt(res.status === 401 ? 'signed out: sign in again to watch' : refusal.message);
    } else if (res.status === 503 && refusal.retryAfterS !== undefined && this.#lostAt !== null && performance.now() - this.#lostAt < MOVING_WINDOW_MS) {
      // Just lost the picture, and the server says wait (CAMERA_NOT_PLACED, CAMERA_OFFLINE): the camera is
      // most likely moving to another node, which takes about a second. Ask again soon, not after a backoff.
      this.#retry(refusal.message, Math.min(refusal.retryAfterS * 1000, MOVING_RETRY_MS), PlayerState.Reconnecting, true);
    } else if (res.status >= 500 || res.status === 429) {
      // Passing: offline camera, too many viewers, overload. Retry-After is the least wait (RFC 9110 §10.2.3).
      this.#retry(refusal.message, (refusal.retryAfterS ?? 0) * 1000);
    } else {
      // The camera is gone or cannot be watched in this browser: waiting a little will not fix it.
      this.#retry(refusal.message, REFUSED_RETRY_MS, PlayerState.Error);
    }
  }

  /** Ends the current attempt and schedules the next one; `now`: after `leastDelayMs` only, without backoff. */
  #retry(reason: string, leastDelayMs = 0, state: PlayerState = PlayerState.Reconnecting, now = false): void {
    if (!this.#running) return;
    this.#teardown();
    let delay = leastDelayMs;
    if (state === PlayerState.Reconnecting && !now) {
      delay = Math.max(delay, this.#backoffMs);
      this.#backoffMs = Math.min(this.#backoffMs * 2, BACKOFF_MAX_MS);
    }
    this.#setState(state, reason);
    this.#retryTimer = setTimeout(() => void this.#connect(), delay);
  }

  /** Ends the current attempt and schedules none. */
  #halt(reason: string): void {
    this.#teardown();
    this.#halted = true;
    this.#setState(PlayerState.Error, reason);
  }

  /** Closes the peer connection and deletes its session; the video keeps its last frame until the next one. */
  #teardown(): void {
    this.#generation++;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#disconnectTimer);
    if (this.#frameHandle !== null) this.#video.cancelVideoFrameCallback(this.#frameHandle);
    this.#frameHandle = null;
    if (this.#pc) {
      this.#pc.ontrack = null;
      this.#pc.onconnectionstatechange = null;
      this.#pc.close();
      this.#pc = null;
    }
    // The old session is deleted in the background: the next offer does not wait for it.
    if (this.#session) deleteSession(this.#session);
    this.#session = null;
    this.#liveSince = null;
    this.#lastBytes = null;
    this.#lastFramesDecoded = 0;
    this.#sessionFramed = false;
    this.#lastRenderAt = null;
    this.#frameGapMs = null;
  }

  /** Tracks rendered frames: requestVideoFrameCallback fires once per frame handed to the compositor. */
  #watchFrames(gen: number): void {
    if (!('requestVideoFrameCallback' in this.#video)) return;
    const onFrame = (now: DOMHighResTimeStamp): void => {
      if (gen !== this.#generation) return;
      this.#frameSeen(now, true);
      this.#frameHandle = this.#video.requestVideoFrameCallback(onFrame);
    };
    this.#frameHandle = this.#video.requestVideoFrameCallback(onFrame);
  }

  /** A frame was rendered (`rendered`) or the decoder's count went up: the stream is alive. */
  #frameSeen(now: number, rendered: boolean): void {
    if (rendered) {
      if (this.#lastRenderAt !== null) {
        const gap = now - this.#lastRenderAt;
        // A gap as long as a stall says nothing of the source's frame rate.
        if (gap > 0 && gap < FIRST_FRAME_MS) this.#frameGapMs = this.#frameGapMs === null ? gap : this.#frameGapMs + GAP_SMOOTHING * (gap - this.#frameGapMs);
      }
      this.#lastRenderAt = now;
    }
    this.#lastFrameAt = Math.max(this.#lastFrameAt, now);
    this.#sessionFramed = true;
    this.#lostAt = null;
    if (this.#state !== PlayerState.Live) {
      this.#liveSince = now;
      this.#setState(PlayerState.Live, null);
    }
  }

  /** How long without a frame, ms, before the current session is taken as stalled. */
  #stallAllowanceMs(): number {
    if (!this.#sessionFramed) return FIRST_FRAME_MS;
    // Where nothing is drawn, life shows only in the decoder's count, read once a second.
    if (!('requestVideoFrameCallback' in this.#video) || document.visibilityState === 'hidden') return FIRST_FRAME_MS;
    return Math.min(FIRST_FRAME_MS, Math.max(LIVE_STALL_MS, STALL_FRAMES * (this.#frameGapMs ?? 0)));
  }

  /** Every STALL_CHECK_MS: gives up on a session that stopped showing frames, and starts a new one. */
  async #checkStall(): Promise<void> {
    const pc = this.#pc;
    if (!pc?.remoteDescription || this.#stallChecking) return;
    if (performance.now() - this.#lastFrameAt <= this.#stallAllowanceMs()) return;
    // Nothing rendered for a while; the decoder may still be at work where nothing is drawn (a video
    // scrolled out of view). Ask it before giving up on the session.
    const gen = this.#generation;
    this.#stallChecking = true;
    let decoded: number | null;
    try {
      decoded = (await inboundVideo(pc))?.framesDecoded ?? null;
    } finally {
      this.#stallChecking = false;
    }
    if (gen !== this.#generation || !this.#running) return;
    const now = performance.now();
    if (decoded !== null && decoded > this.#lastFramesDecoded) {
      this.#lastFramesDecoded = decoded;
      this.#frameSeen(now, false);
      return;
    }
    if (!this.#sessionFramed) {
      this.#retry('no video arrived');
      return;
    }
    // It was flowing and stopped: most likely its node went away and the camera is moving. A new offer
    // goes out at once, unless the last stall was recent (then the backoff, so a flapping stream is not
    // asked for again and again).
    this.#lostAt = now;
    const atOnce = this.#backoffMs === BACKOFF_MIN_MS;
    if (atOnce) this.#backoffMs = Math.min(this.#backoffMs * 2, BACKOFF_MAX_MS);
    this.#retry('the video stalled', 0, PlayerState.Reconnecting, atOnce);
  }

  /** Once a second: stats, frames counted by the decoder, and forgiving past failures after a healthy stretch. */
  async #tick(): Promise<void> {
    const pc = this.#pc;
    if (!pc?.remoteDescription) return; // not connected yet: nothing to measure
    const gen = this.#generation;
    const inbound = await inboundVideo(pc);
    if (gen !== this.#generation) return;
    const now = performance.now();

    if (inbound) {
      const bytes = inbound.bytesReceived ?? 0;
      const prev = this.#lastBytes;
      this.#lastBytes = { bytes, at: inbound.timestamp };
      this.#stats = {
        fps: inbound.framesPerSecond ?? (inbound.framesDecoded ? 0 : null),
        // bits per ms = kbit/s
        bitrateKbps: prev && inbound.timestamp > prev.at ? ((bytes - prev.bytes) * 8) / (inbound.timestamp - prev.at) : this.#stats.bitrateKbps,
        width: inbound.frameWidth ?? null,
        height: inbound.frameHeight ?? null,
        packetsLost: inbound.packetsLost ?? null,
      };
      this.#opts.onStats?.(this.#stats);
      // Without requestVideoFrameCallback, in a hidden page, or for a video out of view, nothing may be
      // rendered: decoded frames are then the best sign of life.
      const decoded = inbound.framesDecoded ?? 0;
      if (decoded > this.#lastFramesDecoded) this.#frameSeen(now, false);
      this.#lastFramesDecoded = decoded;
    }

    if (this.#liveSince !== null && now - this.#liveSince >= HEALTHY_MS) this.#backoffMs = BACKOFF_MIN_MS;
  }

  // The page goes away: end the session while requests can still leave. A page kept in the back-forward
  // cache has its timers frozen, so the retry scheduled here runs when it is shown again.
  readonly #onPageHide = (ev: PageTransitionEvent): void => {
    this.#teardown();
    if (ev.persisted && !this.#halted) this.#retryTimer = setTimeout(() => void this.#connect(), 0);
  };

  #setState(state: PlayerState, error: string | null): void {
    if (state === this.#state && error === this.#error) return;
    this.#state = state;
    this.#error = error;
    this.#opts.onState?.(state, error);
  }
}

/** The video's inbound-rtp stats, or undefined (none yet, or the connection closed meanwhile). */
async function inboundVideo(pc: RTCPeerConnection): Promise<RTCInboundRtpStreamStats | undefined> {
  let inbound: RTCInboundRtpStreamStats | undefined;
  try {
    (await pc.getStats()).forEach((s: RTCStats) => {
      if (s.type === 'inbound-rtp' && (s as RTCInboundRtpStreamStats).kind === 'video') inbound = s as RTCInboundRtpStreamStats;
    });
  } catch {
    return undefined;
  }
  return inbound;
}

/** Best effort; keepalive lets it outlive the page. */
function deleteSession(url: string): void {
  fetch(url, { method: 'DELETE', keepalive: true }).catch(() => {});
}

/** Asks the receiver to play frames as soon as they are decoded (for live view, latency beats smoothness). */
function askForLowLatency(receiver: RTCRtpReceiver): void {
  if ('jitterBufferTarget' in receiver) receiver.jitterBufferTarget = 0;
  // Chrome before 124 has only the non-standard hint.
  else (receiver as RTCRtpReceiver & { playoutDelayHint?: number }).playoutDelayHint = 0;
}
