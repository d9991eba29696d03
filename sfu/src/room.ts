import {
  InvalidStateError, NotFoundError, TypedEmitter, UnavailableError, ValidationError, createLogger,
  type RtpHeader, type VideoCodec,
} from '@cctv/core';
import { randomInt } from 'node:crypto';
import { chooseCodec, choosePublisherCodec, direction, extensionId, keepOnlyPayloadType, offeredCodecs, parseSdp, rewriteCandidates, serializeSdp, type ParsedSdp, type SdpMedia } from './sdp.js';
import { Publisher, PublisherState } from './publisher.js';
import { Ingest } from './ingest.js';
import { StreamTrack } from './track.js';
import { Transcoder } from './transcoder.js';
import { Viewer, ViewerState } from './viewer.js';
import { RtpSubscriber, type RtpSubscriberInfo, type RtpSubscription } from './subscriber.js';
import dgram from 'node:dgram';
import type { RTCPeerConnection } from 'werift';
import { PLAYOUT_DELAY_URI, createPublisherPeer, createViewerPeer, type DtlsKeys } from './webrtc.js';

const log = createLogger('sfu:room');

/** What a room takes from its SFU. */
export interface RoomSettings {
  ingestHost: string;
  /** Addresses offered as ICE host candidates (empty: the machine's own). */
  hostAddresses: string[];
  announcedAddresses: string[];
  loopback: boolean;
  portRange: [number, number] | undefined;
  playoutDelay: { minMs: number; maxMs: number };
  fastStart: boolean;
  fastStartMaxBytes: number;
  maxViewers: number;
  transcode: { preset: string; bitrateKbps: number; idleStopMs: number };
  runtimeDir: string;
  dtlsKeys: DtlsKeys;
  /** How long to wait for a camera's first packet before WHEP answers 503, in ms. */
  codecWaitMs: number;
  /** A viewer that sends no RTCP about our stream for this long is closed, in ms (default 15000). */
  viewerIdleTimeoutMs: number;
  /** A WHIP publisher not connected or silent this long is closed, in ms (default 15000). */
  publisherIdleTimeoutMs: number;
  /** A WHIP publisher is asked for a keyframe this often, in ms (default 2000). */
  publisherKeyframeIntervalMs: number;
}

export interface RoomEvents extends Record<string, unknown[]> {
  viewers: [number];
  /** A WHIP publisher connected (its id) or the last one left (null). */
  publisher: [string | null];
  close: [];
}

/** Result of a WHIP offer. */
export interface PublisherAnswer {
  publisher: Publisher;
  /** The SDP answer. */
  sdp: string;
  codec: VideoCodec;
}

/** Result of a WHEP offer. */
export interface ViewerAnswer {
  viewer: Viewer;
  /** The SDP answer. */
  sdp: string;
  codec: VideoCodec;
  transcoded: boolean;
}

/**
 * One camera's room: its RTP ingest port, its tracks (the camera's own, and an H.264 transcode while a
 * viewer needs one) and its viewers. Created and owned by the SFU.
 */
export class Room extends TypedEmitter<RoomEvents> {
  readonly cameraId: string;
  readonly #s: RoomSettings;
  readonly #ingest: Ingest;
  #main: StreamTrack | null = null;
  #h264: StreamTrack | null = null;
  #transcoder: Transcoder | null = null;
  #transcoderIdleTimer: NodeJS.Timeout | undefined;
  readonly #viewers = new Map<string, Viewer>();
  // Ids of viewers that ended, so a DELETE arriving after the browser closed the connection succeeds.
  readonly #ended = new Set<string>();
  // Viewers of the transcode, connected or not: the transcoder stops when the last one goes.
  readonly #transcodeViewers = new Set<Viewer>();
  #codecWaiters: Array<() => void> = [];
  #closed = false;
  // The WHIP publisher feeding the ingest, if any; ids of publishers that ended, for a late DELETE.
  #publisher: Publisher | null = null;
  readonly #endedPublishers = new Set<string>();
  // What the ingest sees as the camera's SSRC, the same for every publisher (as a camera-node's relay).
  readonly #publisherSsrc = randomInt(1, 0xffffffff);
  // Plain-RTP subscribers (recorders, detectors), and the one socket they are all sent from.
  readonly #subscribers = new Map<string, RtpSubscriber>();
  #subSocket: dgram.Socket | null = null;
  #subSweep: NodeJS.Timeout | undefined;
  // Counters of viewers that have left, so the room's totals only ever grow.
  readonly #departed = { packetsSent: 0, bytesSent: 0, retransmitted: 0, nackMisses: 0, nacks: 0, keyframeRequests: 0, remoteLost: 0 };
  /** Viewers that waited for a keyframe (none cached), and their total wait in ms. */
  readonly keyframeWaits = { count: 0, totalMs: 0 };

  constructor(cameraId: string, settings: RoomSettings) {
    super();
    this.cameraId = cameraId;
    this.#s = settings;
    this.onListenerError = (event, error) => log.error({ camera: cameraId, event, err: error }, 'room listener failed');
    this.#ingest = new Ingest({ host: settings.ingestHost, onRtp: (buf, h, codec) => this.#onRtp(buf, h, codec) });
  }

  /** Binds the ingest port (`preferredPort` when it is free). */
  async initialize(preferredPort = 0): Promise<void> {
    await this.#ingest.bind(preferredPort);
  }

  /** The UDP port the camera's RTP goes to. */
  get ingestPort(): number {
    return this.#ingest.port;
  }

  get ingestCounters() {
    return this.#ingest.counters;
  }

  /** The codec the camera sends, once a packet has arrived. */
  get codec(): VideoCodec | null {
    return this.#main?.codec ?? null;
  }

  get viewerCount(): number {
    return this.#viewers.size;
  }

  viewers(): Viewer[] {
    return [...this.#viewers.values()];
  }

  /** Counters over every viewer the room has had, present and gone. */
  get totals(): { packetsSent: number; bytesSent: number; retransmitted: number; nackMisses: number; nacks: number; keyframeRequests: number; remoteLost: number } {
    const t = { ...this.#departed };
    for (const v of this.#viewers.values()) for (const k of Object.keys(t) as Array<keyof typeof t>) t[k] += v.stats[k];
    return t;
  }

  /** The transcoder's process ids while one runs. */
  get transcoderPids(): number[] {
    return this.#transcoder?.pids ?? [];
  }

  /** Track statistics for metrics. */
  trackInfo(): { discontinuities: number; profileLevelId: string | null; lastKeyframeAt: number } | null {
    const t = this.#main;
    return t ? { discontinuities: t.discontinuities, profileLevelId: t.profileLevelId, lastKeyframeAt: t.lastKeyframeAt } : null;
  }

  #onRtp(buf: Buffer, h: RtpHeader, codec: VideoCodec): void {
    let track = this.#main;
    if (!track || track.codec !== codec) {
      track = this.#switchCodec(codec);
    }
    track.push(buf, h);
  }

  #switchCodec(codec: VideoCodec): StreamTrack {
    const old = this.#main;
    const track = new StreamTrack(codec, this.#s.fastStart ? this.#s.fastStartMaxBytes : 0);
    this.#main = track;
    if (old) {
      // The camera now sends another codec: what viewers negotiated no longer fits; they reconnect.
      log.info({ camera: this.cameraId, from: old.codec, to: codec }, 'camera codec changed; closing its viewers');
      void this.#stopTranscoder();
      for (const v of this.viewers()) void v.close();
      // Subscribers find their subscription gone at their next renewal and subscribe again.
      for (const s of this.#subscribers.values()) s.close();
      this.#subscribers.clear();
    }
    const waiters = this.#codecWaiters;
    this.#codecWaiters = [];
    for (const w of waiters) w();
    return track;
  }

  async #waitForCodec(): Promise<VideoCodec> {
    if (this.#main) return this.#main.codec;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#codecWaiters = this.#codecWaiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, this.#s.codecWaitMs);
      this.#codecWaiters.push(done);
    });
    // The waiters ran (or the wait timed out); read the track again, it may have been set meanwhile.
    const main = this.#main as StreamTrack | null;
    if (!main) throw new UnavailableError('CAMERA_OFFLINE', `camera ${this.cameraId} is not sending video`, 2);
    return main.codec;
  }

  /**
   * Answers a WHEP offer (draft-ietf-wish-whep §4.2): picks the codec, creates the viewer's peer
   * connection and returns the SDP answer with its ICE candidates (no trickle needed).
   */
  async createViewer(offer: string): Promise<ViewerAnswer> {
    this.#assertOpen();
    const { parsed, videoIndex, video } = videoOffer(offer, 'recvonly');
    const codecs = offeredCodecs(video);
    if (this.#viewers.size >= this.#s.maxViewers) {
      throw new UnavailableError('TOO_MANY_VIEWERS', `camera ${this.cameraId} has its maximum of ${this.#s.maxViewers} viewers`, 5);
    }
    const cameraCodec = await this.#waitForCodec();
    this.#assertOpen();
    const choice = chooseCodec(codecs, cameraCodec, this.#main?.profileLevelId ?? null);
    keepOnlyPayloadType(video, choice.offered.payloadType);
    const pdId = extensionId(video, PLAYOUT_DELAY_URI);

    const additional = [...this.#s.hostAddresses, ...(this.#s.loopback ? ['127.0.0.1'] : [])];
    const { pc } = createViewerPeer({
      codec: {
        mimeType: `video/${choice.offered.name}`,
        payloadType: choice.offered.payloadType,
        clockRate: choice.offered.clockRate,
        fmtp: choice.offered.fmtp,
        rtcpFb: choice.offered.rtcpFb,
      },
      playoutDelayId: pdId,
      additionalHostAddresses: additional,
      portRange: this.#s.portRange,
      dtlsKeys: this.#s.dtlsKeys,
    });
    // We only send video, and nothing else: audio and extra video sections stay silent.
    const answer = await this.#answer(pc, serializeSdp(parsed), videoIndex, 'sendonly', additional);

    const track = choice.transcode ? await this.#h264Track() : this.#main!;
    const viewer = new Viewer({
      cameraId: this.cameraId,
      pc,
      payloadType: choice.offered.payloadType,
      playoutDelayId: pdId,
      playoutDelay: this.#s.playoutDelay,
      idleTimeoutMs: this.#s.viewerIdleTimeoutMs,
    });
    this.#viewers.set(viewer.id, viewer);
    viewer.on('state', (s) => {
      if (s === ViewerState.Live && viewer.connectedAt && viewer.firstKeyframeAt - viewer.connectedAt > 50) {
        this.keyframeWaits.count++;
        this.keyframeWaits.totalMs += viewer.firstKeyframeAt - viewer.connectedAt;
      }
    });
    viewer.on('keyframerequest', () => this.#ingest.requestKeyframe());
    if (choice.transcode) this.#transcodeViewers.add(viewer);
    viewer.on('close', () => {
      this.#viewers.delete(viewer.id);
      this.#ended.add(viewer.id);
      // Remembered for the late DELETE only; the oldest are forgotten first.
      if (this.#ended.size > 1000) this.#ended.delete(this.#ended.values().next().value!);
      for (const k of Object.keys(this.#departed) as Array<keyof Room['totals']>) this.#departed[k] += viewer.stats[k];
      this.safeEmit('viewers', this.#viewers.size);
      if (this.#transcodeViewers.delete(viewer) && this.#transcodeViewers.size === 0) this.#scheduleTranscoderStop();
    });
    viewer.start(track);
    // Nothing cached to start from: ask the source for a keyframe (it may not be able to).
    if (!track.gop()) this.#ingest.requestKeyframe();
    this.safeEmit('viewers', this.#viewers.size);
    log.info({ camera: this.cameraId, viewer: viewer.id, codec: choice.codec, transcoded: choice.transcode, pt: choice.offered.payloadType }, 'viewer joined');
    return { viewer, sdp: answer, codec: choice.codec, transcoded: choice.transcode };
  }

  /**
   * Answers a WHIP offer (RFC 9725 §4.2): accepts one video section (H.264 packetization-mode=1, else
   * H.265), makes every other section inactive, and returns the SDP answer with every ICE candidate (no
   * trickle). The publisher's packets then reach the room's ingest as a camera-node's would. One
   * publisher per camera: a new one replaces the one before (which is closed).
   */
  async createPublisher(offer: string): Promise<PublisherAnswer> {
    this.#assertOpen();
    const { parsed, videoIndex, video } = videoOffer(offer, 'sendonly');
    const choice = choosePublisherCodec(offeredCodecs(video));
    keepOnlyPayloadType(video, choice.offered.payloadType);

    const additional = [...this.#s.hostAddresses, ...(this.#s.loopback ? ['127.0.0.1'] : [])];
    const pc = createPublisherPeer({
      codec: {
        mimeType: `video/${choice.offered.name}`,
        payloadType: choice.offered.payloadType,
        clockRate: choice.offered.clockRate,
        fmtp: choice.offered.fmtp,
        rtcpFb: choice.offered.rtcpFb,
      },
      additionalHostAddresses: additional,
      portRange: this.#s.portRange,
      dtlsKeys: this.#s.dtlsKeys,
    });
    // We take the one video section; audio and other sections are answered inactive.
    const answer = await this.#answer(pc, serializeSdp(parsed), videoIndex, 'recvonly', additional);
    if (this.#closed) {
      await pc.close().catch(() => {});
      this.#assertOpen();
    }
    const host = this.#s.ingestHost === '0.0.0.0' ? '127.0.0.1' : this.#s.ingestHost === '::' ? '::1' : this.#s.ingestHost;
    const publisher = new Publisher({
      cameraId: this.cameraId,
      pc,
      codec: choice.codec,
      payloadType: choice.offered.payloadType,
      ingest: { host, port: this.ingestPort },
      ssrc: this.#publisherSsrc,
      idleTimeoutMs: this.#s.publisherIdleTimeoutMs,
      keyframeIntervalMs: this.#s.publisherKeyframeIntervalMs,
    });
    try {
      await publisher.start();
    } catch (error) {
      await publisher.close();
      throw error;
    }
    const previous = this.#publisher;
    this.#publisher = publisher;
    publisher.on('state', (s) => {
      if (s === PublisherState.Connected && this.#publisher === publisher) this.safeEmit('publisher', publisher.id);
    });
    publisher.on('close', () => {
      this.#endedPublishers.add(publisher.id);
      if (this.#endedPublishers.size > 100) this.#endedPublishers.delete(this.#endedPublishers.values().next().value!);
      if (this.#publisher === publisher) {
        this.#publisher = null;
        this.safeEmit('publisher', null);
      }
    });
    if (previous) {
      log.info({ camera: this.cameraId, old: previous.id, new: publisher.id }, 'a new WHIP publisher replaces the one before');
      await previous.close();
    }
    log.info({ camera: this.cameraId, publisher: publisher.id, codec: choice.codec, pt: choice.offered.payloadType }, 'publisher joined');
    return { publisher, sdp: answer, codec: choice.codec };
  }

  /** The WHIP publisher feeding the room, if any. */
  get publisher(): Publisher | null {
    return this.#publisher;
  }

  /** Ends a WHIP publisher (WHIP DELETE, RFC 9725 §4.3); one that already ended is not an error. */
  async deletePublisher(id: string): Promise<void> {
    const p = this.#publisher;
    if (!p || p.id !== id) {
      if (this.#endedPublishers.has(id)) return;
      throw new NotFoundError(`publisher ${id} is not publishing camera ${this.cameraId}`);
    }
    await p.close();
  }

  /**
   * Ends a viewer (WHEP DELETE). A viewer that already ended by itself (the browser closed DTLS first)
   * is not an error: the DELETE that follows a page close succeeds.
   */
  async deleteViewer(id: string): Promise<void> {
    const v = this.#viewers.get(id);
    if (!v) {
      if (this.#ended.has(id)) return;
      throw new NotFoundError(`viewer ${id} is not watching camera ${this.cameraId}`);
    }
    await v.close();
  }

  /**
   * Adds a plain-RTP subscriber (a recorder or a detector): the camera's packets go to `target` until
   * the subscription is not renewed for `target.leaseMs`. Waits for the camera's first packet like a
   * viewer does.
   */
  async subscribe(target: RtpSubscription): Promise<RtpSubscriberInfo> {
    this.#assertOpen();
    await this.#waitForCodec();
    this.#assertOpen();
    const track = this.#main!;
    if (!this.#subSocket) {
      const socket = dgram.createSocket(target.host.includes(':') ? 'udp6' : 'udp4');
      socket.on('error', (error) => log.warn({ camera: this.cameraId, err: error }, 'subscriber socket error'));
      this.#subSocket = socket;
      this.#subSweep = setInterval(() => this.#sweepSubscribers(), 1000);
      this.#subSweep.unref();
    }
    const sub = new RtpSubscriber(track.codec, this.#subSocket, target);
    this.#subscribers.set(sub.id, sub);
    sub.start(track);
    if (!track.gop()) this.#ingest.requestKeyframe();
    log.info({ camera: this.cameraId, subscriber: sub.id, to: `${target.host}:${target.port}` }, 'plain-RTP subscriber joined');
    return sub.info;
  }

  /** Extends a subscription's lease; false when it is gone (expired, or the codec changed). */
  renewSubscription(id: string): boolean {
    const s = this.#subscribers.get(id);
    if (!s) return false;
    s.renew();
    return true;
  }

  unsubscribe(id: string): void {
    const s = this.#subscribers.get(id);
    if (!s) return;
    s.close();
    this.#subscribers.delete(id);
    log.info({ camera: this.cameraId, subscriber: id }, 'plain-RTP subscriber left');
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  #sweepSubscribers(): void {
    const now = Date.now();
    for (const [id, s] of this.#subscribers) {
      if (s.expired(now)) {
        s.close();
        this.#subscribers.delete(id);
        log.info({ camera: this.cameraId, subscriber: id }, 'plain-RTP subscriber expired (not renewed)');
      }
    }
  }

  getViewer(id: string): Viewer | undefined {
    return this.#viewers.get(id);
  }

  async #h264Track(): Promise<StreamTrack> {
    clearTimeout(this.#transcoderIdleTimer);
    this.#transcoderIdleTimer = undefined;
    if (this.#h264 && this.#transcoder) return this.#h264;
    // The transcode's viewers get fast start on the same terms as the camera's (none when it is off).
    const output = new StreamTrack('H264', this.#s.fastStart ? this.#s.fastStartMaxBytes : 0);
    const transcoder = new Transcoder({
      cameraId: this.cameraId,
      input: this.#main!,
      output,
      preset: this.#s.transcode.preset,
      bitrateKbps: this.#s.transcode.bitrateKbps,
      runtimeDir: this.#s.runtimeDir,
    });
    this.#h264 = output;
    this.#transcoder = transcoder;
    await transcoder.initialize();
    log.info({ camera: this.cameraId }, 'started the H.264 transcode');
    return output;
  }

  #scheduleTranscoderStop(): void {
    clearTimeout(this.#transcoderIdleTimer);
    this.#transcoderIdleTimer = setTimeout(() => {
      if (this.#transcodeViewers.size === 0) void this.#stopTranscoder();
    }, this.#s.transcode.idleStopMs);
    this.#transcoderIdleTimer.unref();
  }

  async #stopTranscoder(): Promise<void> {
    clearTimeout(this.#transcoderIdleTimer);
    const t = this.#transcoder;
    this.#transcoder = null;
    this.#h264 = null;
    if (t) {
      await t.close();
      log.info({ camera: this.cameraId }, 'stopped the H.264 transcode');
    }
  }

  /**
   * Answers an offer on a peer connection made for it: the video section `videoIndex` in `direction`,
   * every other section inactive, as the DTLS server (a=setup:passive, RFC 5763 §5: the peer starts the
   * handshake the moment ICE connects, instead of waiting for werift's client, which waits 100 ms before
   * its first flight), with only the host candidates this SFU offers. A failure closes the connection.
   */
  async #answer(pc: RTCPeerConnection, offer: string, videoIndex: number, dir: 'sendonly' | 'recvonly', additional: string[]): Promise<string> {
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: offer });
      for (const t of pc.getTransceivers()) {
        const isOurs = t.kind === 'video' && t.mLineIndex === videoIndex;
        t.setDirection(isOurs ? dir : 'inactive');
        t.dtlsTransport.role = 'server';
      }
      await pc.setLocalDescription(await pc.createAnswer());
      const local = pc.localDescription?.sdp;
      if (!local) throw new Error('no local description');
      const allowed = new Set(additional.length > 0 && this.#s.hostAddresses.length > 0 ? additional : []);
      return rewriteCandidates(local, allowed, this.#s.announcedAddresses);
    } catch (error) {
      await pc.close().catch(() => {});
      throw new ValidationError('sdp', `could not be answered: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Closes every viewer, the transcoder and the ingest port. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#publisher?.close();
    await Promise.all(this.viewers().map((v) => v.close()));
    await this.#stopTranscoder();
    for (const s of this.#subscribers.values()) s.close();
    this.#subscribers.clear();
    clearInterval(this.#subSweep);
    this.#subSocket?.close();
    this.#subSocket = null;
    this.#ingest.close();
    for (const w of this.#codecWaiters) w();
    this.#codecWaiters = [];
    this.safeEmit('close');
    this.removeAllListeners();
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError(`room of camera ${this.cameraId} is closed`);
  }
}

/** An offer must carry a DTLS fingerprint and ICE credentials, in its section or the session. */
/**
 * The offer's video section, refused unless it goes the way asked (`recvonly`: a viewer receives;
 * `sendonly`: a publisher sends; `sendrecv` does both) and carries DTLS and ICE.
 */
function videoOffer(offer: string, way: 'recvonly' | 'sendonly'): { parsed: ParsedSdp; videoIndex: number; video: SdpMedia } {
  const parsed = parseSdp(offer);
  const videoIndex = parsed.media.findIndex((m) => m.kind === 'video' && m.port !== 0);
  if (videoIndex < 0) throw new ValidationError('sdp', 'has no video m= section');
  const video = parsed.media[videoIndex]!;
  const dir = direction(video);
  if (dir !== way && dir !== 'sendrecv') throw new ValidationError('sdp', `video must be ${way} or sendrecv to ${way === 'recvonly' ? 'receive' : 'publish'}, not ${dir}`);
  requireSecurity(parsed, video);
  return { parsed, videoIndex, video };
}

function requireSecurity(parsed: ParsedSdp, m: SdpMedia): void {
  if (!m.lines.some((l) => l.startsWith('a=fingerprint:')) && !parsed.session.some((l) => l.startsWith('a=fingerprint:'))) {
    throw new ValidationError('sdp', 'has no DTLS fingerprint (a=fingerprint)');
  }
  if (!m.lines.some((l) => l.startsWith('a=ice-ufrag:')) && !parsed.session.some((l) => l.startsWith('a=ice-ufrag:'))) {
    throw new ValidationError('sdp', 'has no ICE credentials (a=ice-ufrag)');
  }
}
