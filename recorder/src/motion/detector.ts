import { canonicalJson, counter, createLogger, gauge, histogram, requireExecutable, type CameraConfig, type Config, type Database } from '@cctv/core';
import { FrameTap, type DecodedFrame } from './decoder.js';
import { EventStore, eventThumbnail } from './events.js';
import { DEFAULT_MODEL_PATH, MotionModel, type ModelFrame } from './model.js';
import { MotionTracker, type TrackerTransition } from './tracker.js';
import type { EventNotice, MotionEvent } from './types.js';

const log = createLogger('detector');

const framesSeen = counter('cctv_detector_frames_total', 'Frames the motion model looked at.', ['camera']);
const framesDropped = counter('cctv_detector_dropped_frames_total', 'Frames dropped because the model was behind (the newest frame of a camera replaces one still waiting).', ['camera']);
const detectorFps = gauge('cctv_detector_fps', 'Frames per second the motion model looks at, per camera (over the last 5 s).', ['camera']);
const inferenceSeconds = histogram('cctv_detector_inference_seconds', 'Time of one run of the motion model (a batch of frames).', [], [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]);
const batchFrames = histogram('cctv_detector_batch_frames', 'Frames per run of the motion model.', [], [1, 2, 4, 8, 16, 32, 64]);
const eventsRaised = counter('cctv_motion_events_total', 'Motion events raised.', ['camera']);
const lightChanges = counter('cctv_detector_light_changes_total', 'Frames taken as a change of light (the background started again), not motion.', ['camera']);

/** Where event notices go: the bus (dashboards, the API's feed) and the alerts. */
export interface DetectorSinks {
  publish?: (notice: EventNotice) => void;
  alerts?: { onEvent(notice: EventNotice, camera: CameraConfig): Promise<void> } | null;
}

export interface DetectorOptions extends DetectorSinks {
  config: Readonly<Config>;
  db: Database;
  /** This node's id (in events). */
  id: string;
  /** Address SFUs send RTP to; default config.detector.listenHost. */
  listenHost?: string;
}

interface Watch {
  camera: CameraConfig;
  key: string;
  tap: FrameTap;
  tracker: MotionTracker | null;
  event: MotionEvent | null;
  /** Event writes of this camera, in order. */
  chain: Promise<void>;
  frames: number;
  /** Frames per second through the model over the last 5 s. */
  fps: number;
}

export interface DetectorStatus {
  model: string;
  cameras: Array<{ id: string; decoding: boolean; fps: number; inEvent: boolean; port: number }>;
}

/**
 * The motion detector of a node: for each camera placed on it, a FrameTap (the SFU's RTP decoded into a
 * few small frames a second) and a MotionTracker (zones, background, event rules); frames of every
 * camera go through the ONNX model together, in batches. Events are stored with a thumbnail, published
 * and handed to the alerts.
 */
export class Detector {
  readonly id: string;
  readonly events: EventStore;
  readonly #o: DetectorOptions;
  readonly #ffmpeg: string;
  #model: MotionModel | null = null;
  readonly #watches = new Map<string, Watch>();
  /** The newest frame of each camera not yet through the model. */
  readonly #waiting = new Map<string, DecodedFrame>();
  #running = false;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;
  #setting: Promise<void> = Promise.resolve();
  readonly stats = { frames: 0, batches: 0, dropped: 0, events: 0 };

  constructor(o: DetectorOptions) {
    this.#o = o;
    this.id = o.id;
    this.events = new EventStore(o.db);
    this.#ffmpeg = requireExecutable('ffmpeg', 'install it with: sudo apt-get install ffmpeg');
  }

  get model(): MotionModel | null {
    return this.#model;
  }

  async start(): Promise<void> {
    const path = this.#o.config.detector.model ?? DEFAULT_MODEL_PATH;
    this.#model = await MotionModel.load(path);
    log.info({ model: path, cellSize: this.#model.cellSize }, 'motion model loaded');
    // Events this node left open when it stopped last: they ended then, as far as anyone can tell.
    const ended = await this.events.endOpen(this.id, null, null).catch(() => 0);
    if (ended > 0) log.info({ events: ended }, 'ended the events an earlier run left open');
    let last = new Map<string, number>();
    this.#timer = setInterval(() => {
      const now = new Map<string, number>();
      for (const [id, w] of this.#watches) {
        now.set(id, w.frames);
        w.fps = (w.frames - (last.get(id) ?? w.frames)) / 5;
        detectorFps.set({ camera: id }, w.fps);
      }
      last = now;
    }, 5000);
    this.#timer.unref();
  }

  /** The UDP port each watched camera's RTP is to be sent to. */
  ports(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, w] of this.#watches) if (w.tap.port) out[id] = w.tap.port;
    return out;
  }

  status(): DetectorStatus {
    return {
      model: this.#model?.path ?? '',
      cameras: [...this.#watches.values()].map((w) => ({
        id: w.camera.id, decoding: w.tap.decoding, fps: w.fps, inEvent: w.event !== null && w.event.endMs === null, port: w.tap.port,
      })),
    };
  }

  /** Watches exactly these cameras (those with motion enabled); a changed camera's settings apply at once. */
  setCameras(cameras: readonly CameraConfig[]): Promise<void> {
    this.#setting = this.#setting.then(() => this.#apply(cameras.filter((c) => c.enabled && c.motion.enabled)));
    return this.#setting;
  }

  async #apply(cameras: CameraConfig[]): Promise<void> {
    if (this.#closed) return;
    const want = new Map(cameras.map((c) => [c.id, c]));
    for (const [id, w] of this.#watches) {
      const next = want.get(id);
      const tapKey = next ? `${next.motion.fps}/${next.motion.width}` : '';
      if (!next || tapKey !== `${w.camera.motion.fps}/${w.camera.motion.width}`) {
        this.#watches.delete(id);
        this.#waiting.delete(id);
        detectorFps.remove({ camera: id });
        await this.#stopWatch(w);
      } else if (canonicalJson(next.motion) !== w.key) {
        // New zones or sensitivity: a new tracker (and background) from the next frame; the event in progress ends.
        this.#finish(w, w.tracker?.flush() ?? []);
        w.camera = next;
        w.key = canonicalJson(next.motion);
        w.tracker = null;
      } else {
        w.camera = next;
      }
    }
    for (const cam of cameras) {
      if (this.#watches.has(cam.id)) continue;
      const tap = new FrameTap({ camera: cam.id, ffmpeg: this.#ffmpeg, fps: cam.motion.fps, width: cam.motion.width, listenHost: this.#o.listenHost ?? this.#o.config.detector.listenHost });
      const w: Watch = { camera: cam, key: canonicalJson(cam.motion), tap, tracker: null, event: null, chain: Promise.resolve(), frames: 0, fps: 0 };
      tap.on('frame', (f) => this.#onFrame(w, f));
      await tap.start();
      this.#watches.set(cam.id, w);
      log.info({ camera: cam.id, port: tap.port }, 'watching for motion');
    }
  }

  async #stopWatch(w: Watch): Promise<void> {
    this.#finish(w, w.tracker?.flush() ?? []);
    await w.tap.close();
    await w.chain;
  }

  #onFrame(w: Watch, f: DecodedFrame): void {
    if (this.#closed || this.#watches.get(w.camera.id) !== w) return;
    if (this.#waiting.has(w.camera.id)) {
      this.stats.dropped++;
      framesDropped.inc({ camera: w.camera.id });
    }
    this.#waiting.set(w.camera.id, f);
    if (!this.#running) void this.#drain();
  }

  /** Runs the waiting frames through the model, in batches of frames of the same size. */
  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#waiting.size > 0 && !this.#closed && this.#model) {
        const model = this.#model;
        const [firstId, first] = this.#waiting.entries().next().value as [string, DecodedFrame];
        const batch: Array<{ w: Watch; f: DecodedFrame }> = [];
        for (const [id, f] of this.#waiting) {
          if (batch.length >= this.#o.config.detector.maxBatch) break;
          if (f.width !== first.width || f.height !== first.height) continue;
          const w = this.#watches.get(id);
          this.#waiting.delete(id);
          if (w) batch.push({ w, f });
        }
        if (batch.length === 0) {
          this.#waiting.delete(firstId);
          continue;
        }
        const { width, height } = first;
        const inputs: ModelFrame[] = [];
        for (const { w, f } of batch) {
          if (!w.tracker || w.tracker.grid.width !== width || w.tracker.grid.height !== height) {
            const g = model.grid(width, height);
            w.tracker = new MotionTracker(w.camera.motion, { width, height, cellSize: model.cellSize, cols: g.cols, rows: g.rows });
          }
          const luma = f.data.subarray(0, width * height);
          inputs.push({ frame: luma, background: w.tracker.backgroundFor(luma), ...w.tracker.params });
        }
        const t0 = performance.now();
        const outs = await model.run(inputs, width, height);
        inferenceSeconds.observe((performance.now() - t0) / 1000);
        batchFrames.observe(batch.length);
        this.stats.batches++;
        batch.forEach(({ w, f }, i) => {
          const out = outs[i]!;
          const tracker = w.tracker!;
          const { verdict, transitions } = tracker.observe(f.data.subarray(0, width * height), f.data, out.cells, out.background, f.atMs);
          this.stats.frames++;
          w.frames++;
          framesSeen.inc({ camera: w.camera.id });
          if (verdict.lightChange) lightChanges.inc({ camera: w.camera.id });
          if (transitions.length > 0) this.#finish(w, transitions, width, height);
        });
      }
    } catch (error) {
      log.error({ err: error }, 'the motion model failed on a batch; its frames are dropped');
    } finally {
      this.#running = false;
    }
    if (this.#waiting.size > 0 && !this.#closed) setImmediate(() => void (this.#running ? null : this.#drain()));
  }

  /** Stores, publishes and alerts an event's transitions, in order, for one camera. */
  #finish(w: Watch, transitions: TrackerTransition[], width = w.tracker?.grid.width ?? 0, height = w.tracker?.grid.height ?? 0): void {
    for (const t of transitions) {
      w.chain = w.chain.then(() => this.#transition(w, t, width, height)).catch((error: unknown) => {
        log.warn({ camera: w.camera.id, phase: t.phase, err: error }, 'cannot store a motion event');
      });
    }
  }

  async #transition(w: Watch, t: TrackerTransition, width: number, height: number): Promise<void> {
    const camera = w.camera;
    const thumb = async (): Promise<Buffer | null> => {
      if (!t.peakFrame || width === 0) return null;
      try {
        return await eventThumbnail(this.#ffmpeg, t.peakFrame, width, height, t.box);
      } catch (error) {
        log.warn({ camera: camera.id, err: error }, 'cannot make an event thumbnail');
        return null;
      }
    };
    if (t.phase === 'start') {
      // Stored and sent before its thumbnail is made: the alert does not wait for a JPEG.
      const e = await this.events.insert({ camera: camera.id, kind: 'motion', startMs: t.startMs, endMs: null, peakScore: t.peakScore, zones: t.zones, box: t.box, node: this.id }, null);
      w.event = e;
      this.stats.events++;
      eventsRaised.inc({ camera: camera.id });
      log.info({ camera: camera.id, event: e.id, zones: e.zones, score: e.peakScore }, 'motion event started');
      this.#notify({ phase: 'start', event: e }, camera);
      const jpeg = await thumb();
      if (jpeg) w.event = (await this.events.update(e.id, { endMs: null, peakScore: e.peakScore, zones: e.zones, box: e.box }, jpeg)) ?? e;
      return;
    }
    const e = w.event;
    if (!e) return;
    const updated = await this.events.update(e.id, { endMs: t.endMs, peakScore: t.peakScore, zones: t.zones, box: t.box }, t.phase === 'end' ? await thumb() : null);
    if (!updated) return;
    if (t.phase === 'end') {
      w.event = null;
      log.info({ camera: camera.id, event: e.id, seconds: ((updated.endMs ?? 0) - updated.startMs) / 1000, score: updated.peakScore }, 'motion event ended');
    } else {
      w.event = updated;
    }
    this.#notify({ phase: t.phase, event: updated }, camera);
  }

  #notify(notice: EventNotice, camera: CameraConfig): void {
    try {
      this.#o.publish?.(notice);
    } catch (error) {
      log.warn({ err: error }, 'cannot publish a motion event');
    }
    if (notice.phase !== 'update' && this.#o.alerts) {
      void this.#o.alerts.onEvent(notice, camera).catch((error: unknown) => log.warn({ camera: camera.id, err: error }, 'cannot raise the alerts of a motion event'));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#setting;
    for (const w of this.#watches.values()) this.#finish(w, w.tracker?.flush() ?? []);
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await Promise.all([...this.#watches.values()].map(async (w) => {
      await w.tap.close();
      await w.chain;
    }));
    this.#watches.clear();
    this.#waiting.clear();
    await this.#model?.close();
  }
}
