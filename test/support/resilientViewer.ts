import { spawn, type ChildProcess } from 'node:child_process';
import { RTCPeerConnection, type RtpPacket } from 'werift';
import { TIMECODE_BITS, TIMECODE_BLOCK, decodeTimecode } from '@cctv/camera-node';
import { testIceServers } from './stun.js';
import { h264Codec } from './whepClient.js';

/**
 * A viewer that behaves like the dashboard's player: when no video arrives for `stallMs` it drops the
 * session and opens a new one through the front door (any signaling instance that answers), which
 * routes it to wherever the camera now runs. It notes the time of every complete keyframe it receives —
 * the first moment a decoder could show a picture again.
 */
export interface ResilientViewer {
  packets(): number;
  /** When the last RTP packet arrived, ms. */
  lastPacketAt(): number;
  /** Sessions opened after the first (each one a recovery). */
  reconnects(): number;
  /** Resolves with the arrival time of the first complete keyframe after `t` (ms). */
  keyframeAfter(t: number, timeoutMs?: number): Promise<number>;
  /** Resolves with the arrival time of the first packet after `t` (ms). */
  packetAfter(t: number, timeoutMs?: number): Promise<number>;
  /** The longest time without a packet between `from` and `to` (ms), as seen by the viewer. */
  longestSilence(from: number, to: number): number;
  /**
   * With `timecode`: resolves with the time a frame that entered the camera's encoder at or after `t`
   * was decoded here — live video again, not a replay of frames from before `t`.
   */
  freshFrameAfter(t: number, timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

export interface ResilientOptions {
  /** Front doors (signaling base URLs), tried in turn. */
  doors: () => string[];
  camera: string;
  headers: Record<string, string>;
  /** No packet for this long is a stall; default 800 ms. */
  stallMs?: number;
  /**
   * Decode the video with ffmpeg and read the timecode the `timecode` test pattern draws (the camera must
   * use it, at 640 px wide or more).
   */
  timecode?: { width: number };
}

/** Annex B from H.264 RTP payloads (single NAL units, STAP-A, FU-A). */
function depacketize(p: Buffer, out: (b: Buffer) => void): void {
  const START = Buffer.from([0, 0, 0, 1]);
  const t = p[0]! & 0x1f;
  if (t >= 1 && t <= 23) out(Buffer.concat([START, p]));
  else if (t === 24) {
    for (let i = 1; i + 2 <= p.length; ) {
      const size = p.readUInt16BE(i);
      out(Buffer.concat([START, p.subarray(i + 2, i + 2 + size)]));
      i += 2 + size;
    }
  } else if (t === 28 && p.length > 2) {
    if (p[1]! & 0x80) out(Buffer.concat([START, Buffer.from([(p[0]! & 0xe0) | (p[1]! & 0x1f)]), p.subarray(2)]));
    else out(p.subarray(2));
  }
}

/** Decodes the timecode row of each frame piped in; calls back with (arrival ms, timecode ms). */
function timecodeReader(width: number, onFrame: (arrivedAt: number, encodedAt: number) => void): { write: (b: Buffer) => void; close: () => void } {
  const ff: ChildProcess = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-fflags', 'nobuffer', '-flags', 'low_delay', '-f', 'h264', '-i', 'pipe:0', '-vf', `crop=${width}:${TIMECODE_BLOCK}:0:0`, '-pix_fmt', 'gray', '-f', 'rawvideo', 'pipe:1'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const frameBytes = width * TIMECODE_BLOCK;
  let buf = Buffer.alloc(0);
  ff.stdout!.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= frameBytes) {
      const row = buf.subarray(width * (TIMECODE_BLOCK / 2), width * (TIMECODE_BLOCK / 2 + 1));
      const bits = Array.from({ length: TIMECODE_BITS }, (_, k) => (row[k * TIMECODE_BLOCK + TIMECODE_BLOCK / 2]! > 128 ? 1 : 0));
      const now = Date.now();
      const ms = decodeTimecode(bits, now);
      if (ms !== null) onFrame(now, ms);
      buf = buf.subarray(frameBytes);
    }
  });
  ff.stdin!.on('error', () => {});
  return {
    write: (b) => {
      if (ff.exitCode === null) ff.stdin!.write(b);
    },
    close: () => {
      ff.stdin!.end();
      ff.kill('SIGKILL');
    },
  };
}

/** Whether an H.264 RTP payload starts a keyframe (IDR, or SPS/PPS ahead of one). */
function startsKeyframe(p: Buffer): boolean {
  if (p.length < 2) return false;
  const t = p[0]! & 0x1f;
  if (t === 5 || t === 7) return true;
  if (t === 24) {
    // STAP-A: look at the aggregated units.
    for (let i = 1; i + 2 < p.length; ) {
      const size = p.readUInt16BE(i);
      const nt = p[i + 2]! & 0x1f;
      if (nt === 5 || nt === 7) return true;
      i += 2 + size;
    }
    return false;
  }
  if (t === 28) return (p[1]! & 0x80) !== 0 && (p[1]! & 0x1f) === 5;
  return false;
}

export async function watchResilient(o: ResilientOptions): Promise<ResilientViewer> {
  const stallMs = o.stallMs ?? 800;
  let pc: RTCPeerConnection | null = null;
  let location: string | null = null;
  let count = 0;
  let last = 0;
  let sessions = 0;
  let inKeyframe = false;
  const keyframes: number[] = [];
  const packetTimes: number[] = [];
  let closed = false;
  let connecting: Promise<void> | null = null;
  /** Decoded frames: [arrival ms, encoder ms]. */
  const decoded: Array<[number, number]> = [];
  const reader = o.timecode ? timecodeReader(o.timecode.width, (a, e) => decoded.push([a, e])) : null;

  const open = async (): Promise<void> => {
    for (let attempt = 0; !closed; attempt++) {
      for (const door of o.doors()) {
        const next = new RTCPeerConnection({ iceServers: testIceServers(), iceUseIpv6: false, iceAdditionalHostAddresses: ['127.0.0.1'], codecs: { video: [h264Codec()] } });
        const t = next.addTransceiver('video', { direction: 'recvonly' });
        t.onTrack.subscribe((track) => {
          track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
            if (pc !== next) return;
            const now = Date.now();
            count++;
            last = now;
            packetTimes.push(now);
            if (packetTimes.length > 200_000) packetTimes.splice(0, 100_000);
            const payload = rtp.payload;
            if (reader) depacketize(payload, reader.write);
            if (startsKeyframe(payload)) inKeyframe = true;
            if (rtp.header.marker) {
              if (inKeyframe) keyframes.push(now);
              inKeyframe = false;
            }
          });
        });
        try {
          await next.setLocalDescription(await next.createOffer());
          const res = await fetch(`${door}/api/cameras/${o.camera}/whep`, {
            method: 'POST', body: next.localDescription!.sdp, headers: { 'content-type': 'application/sdp', ...o.headers }, signal: AbortSignal.timeout(3000),
          });
          if (res.status !== 201) throw new Error(`WHEP ${res.status}: ${await res.text()}`);
          const answer = await res.text();
          const prev = pc;
          const prevLocation = location;
          pc = next;
          location = new URL(res.headers.get('location')!, door).toString();
          last = Date.now();
          sessions++;
          await next.setRemoteDescription({ type: 'answer', sdp: answer });
          if (prev) {
            void prev.close().catch(() => {});
            if (prevLocation) void fetch(prevLocation, { method: 'DELETE', headers: o.headers }).catch(() => {});
          }
          return;
        } catch {
          await next.close().catch(() => {});
        }
      }
      await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 500)));
    }
  };

  await open();
  const timer = setInterval(() => {
    if (closed || connecting || Date.now() - last < stallMs) return;
    connecting = open().finally(() => {
      connecting = null;
    });
  }, 100);

  const waitFor = async (pick: () => number | undefined, what: string, timeoutMs: number): Promise<number> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = pick();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`no ${what} within ${timeoutMs} ms (packets so far: ${count}, sessions: ${sessions})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  return {
    packets: () => count,
    lastPacketAt: () => last,
    reconnects: () => Math.max(0, sessions - 1),
    keyframeAfter: (t, timeoutMs = 15_000) => waitFor(() => keyframes.find((k) => k > t), 'keyframe', timeoutMs),
    packetAfter: (t, timeoutMs = 15_000) => waitFor(() => packetTimes.find((k) => k > t), 'packet', timeoutMs),
    freshFrameAfter: (t, timeoutMs = 15_000) => waitFor(() => decoded.find(([, e]) => e >= t)?.[0], 'fresh frame', timeoutMs),
    longestSilence(from, to) {
      let prev = from;
      let longest = 0;
      for (const t of packetTimes) {
        if (t < from) continue;
        if (t > to) break;
        longest = Math.max(longest, t - prev);
        prev = t;
      }
      return Math.max(longest, to - prev);
    },
    async close() {
      closed = true;
      clearInterval(timer);
      reader?.close();
      await connecting?.catch(() => {});
      if (location) await fetch(location, { method: 'DELETE', headers: o.headers }).catch(() => {});
      await pc?.close().catch(() => {});
    },
  };
}
