import { randomBytes } from 'node:crypto';

/** A small deterministic PRNG (mulberry32): a failing run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The kinds of datagram the packet fuzzer sends. */
export const PacketKind = {
  /** Random bytes, 0–1500 long. */
  Random: 'random',
  /** A valid RTP header (random payload type, SSRC, sequence number, timestamp) and a random payload. */
  RtpHeader: 'rtp-header',
  /** A valid RTP header with an ingest payload type (96/97) and a stranger's SSRC. */
  IngestPayloadType: 'ingest-pt',
  /** A real ffmpeg packet with 1–8 bits flipped. */
  BitFlip: 'bit-flip',
  /** A real ffmpeg packet cut short. */
  Truncated: 'truncated',
  /** A real ffmpeg packet as it was (another stream's SSRC). */
  Replay: 'replay',
  /** RTCP-looking: version 2, packet type 200–206, random length and body. */
  Rtcp: 'rtcp',
} as const;
export type PacketKind = (typeof PacketKind)[keyof typeof PacketKind];

const KINDS = Object.values(PacketKind);

/**
 * Makes junk for an RTP ingest port from a slab of random bytes and real packets captured from ffmpeg.
 * Cheap per packet (slices of the slab, small copies), so a loop can send tens of thousands a second.
 */
export class PacketFuzzer {
  readonly #rand: () => number;
  readonly #slab = randomBytes(8 * 1024 * 1024);
  readonly #real: Buffer[];
  readonly counts: Record<PacketKind, number> = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<PacketKind, number>;

  constructor(seed: number, real: Buffer[]) {
    if (real.length === 0) throw new TypeError("argument 'real' must hold captured packets");
    this.#rand = prng(seed);
    this.#real = real;
  }

  #int(n: number): number {
    return Math.floor(this.#rand() * n);
  }

  #randomBytes(n: number): Buffer {
    const off = this.#int(this.#slab.length - n);
    return this.#slab.subarray(off, off + n);
  }

  next(): Buffer {
    const kind = KINDS[this.#int(KINDS.length)]!;
    this.counts[kind]++;
    switch (kind) {
      case PacketKind.Random:
        return this.#randomBytes(this.#int(1501));
      case PacketKind.RtpHeader:
      case PacketKind.IngestPayloadType: {
        const payload = this.#int(1200);
        const b = Buffer.allocUnsafe(12 + payload);
        this.#randomBytes(12 + payload).copy(b);
        b[0] = 0x80;
        const pt = kind === PacketKind.IngestPayloadType ? 96 + this.#int(2) : this.#int(128);
        b[1] = (this.#rand() < 0.5 ? 0x80 : 0) | pt;
        return b;
      }
      case PacketKind.BitFlip: {
        const b = Buffer.from(this.#real[this.#int(this.#real.length)]!);
        for (let i = 1 + this.#int(8); i > 0; i--) b[this.#int(b.length)]! ^= 1 << this.#int(8);
        return b;
      }
      case PacketKind.Truncated: {
        const src = this.#real[this.#int(this.#real.length)]!;
        return src.subarray(0, this.#int(src.length));
      }
      case PacketKind.Replay:
        return this.#real[this.#int(this.#real.length)]!;
      case PacketKind.Rtcp: {
        const n = 4 + this.#int(200);
        const b = Buffer.allocUnsafe(n);
        this.#randomBytes(n).copy(b);
        b[0] = 0x80 | (b[0]! & 0x3f);
        b[1] = 200 + this.#int(7);
        return b;
      }
    }
  }
}

/**
 * Mutates a valid SDP offer: deletes, duplicates, swaps or corrupts lines; adds huge lines or binary
 * garbage; removes the fingerprint or ICE credentials; flips directions; scrambles codecs and m= lines.
 */
export class SdpFuzzer {
  readonly #rand: () => number;
  readonly #bases: string[][];

  constructor(seed: number, bases: string[]) {
    this.#rand = prng(seed);
    this.#bases = bases.map((b) => b.split('\r\n').filter((l) => l.length > 0));
  }

  #int(n: number): number {
    return Math.floor(this.#rand() * n);
  }

  #garbage(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.#int(this.#rand() < 0.8 ? 128 : 0x3000));
    return s;
  }

  /** One mutated offer and the names of the mutations applied. */
  next(): { sdp: string; mutations: string[] } {
    const lines = [...this.#bases[this.#int(this.#bases.length)]!];
    const mutations: string[] = [];
    const rounds = 1 + this.#int(4);
    for (let r = 0; r < rounds; r++) {
      const i = this.#int(lines.length);
      const op = this.#int(16);
      switch (op) {
        case 0:
          mutations.push(`delete ${i}`);
          lines.splice(i, 1);
          break;
        case 1:
          mutations.push(`duplicate ${i}`);
          lines.splice(i, 0, lines[i] ?? '');
          break;
        case 2: {
          const j = this.#int(lines.length);
          mutations.push(`swap ${i} ${j}`);
          [lines[i], lines[j]] = [lines[j]!, lines[i]!];
          break;
        }
        case 3: {
          const l = lines[i] ?? '';
          const at = this.#int(l.length + 1);
          mutations.push(`corrupt ${i}`);
          lines[i] = l.slice(0, at) + this.#garbage(1 + this.#int(8)) + l.slice(at + this.#int(8));
          break;
        }
        case 4:
          mutations.push(`truncate ${i}`);
          lines[i] = (lines[i] ?? '').slice(0, this.#int((lines[i] ?? '').length));
          break;
        case 5:
          mutations.push('huge line');
          lines.splice(i, 0, `a=x-huge:${'A'.repeat(this.#rand() < 0.5 ? 70_000 : 1 + this.#int(60_000))}`);
          break;
        case 6:
          mutations.push('binary garbage');
          if (this.#rand() < 0.3) lines.splice(0, lines.length, this.#garbage(1 + this.#int(3000)));
          else lines.splice(i, 0, this.#garbage(1 + this.#int(300)));
          break;
        case 7:
          mutations.push('no fingerprint');
          for (let k = lines.length - 1; k >= 0; k--) if (lines[k]!.startsWith('a=fingerprint:')) lines.splice(k, 1);
          break;
        case 8:
          mutations.push('no ufrag');
          for (let k = lines.length - 1; k >= 0; k--) if (lines[k]!.startsWith('a=ice-ufrag:') || (this.#rand() < 0.5 && lines[k]!.startsWith('a=ice-pwd:'))) lines.splice(k, 1);
          break;
        case 9: {
          const dir = ['sendonly', 'inactive', 'sendrecv', 'recvonly', 'bogus'][this.#int(5)]!;
          mutations.push(`direction ${dir}`);
          for (let k = 0; k < lines.length; k++) if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(lines[k]!)) lines[k] = `a=${dir}`;
          break;
        }
        case 10: {
          mutations.push('codec names');
          const names = ['VP8', 'H265', 'HEVC', 'H264', 'rtx', 'opus', '', 'h264'];
          for (let k = 0; k < lines.length; k++) if (lines[k]!.startsWith('a=rtpmap:') && this.#rand() < 0.5) lines[k] = lines[k]!.replace(/ [^/ ]+\//, ` ${names[this.#int(names.length)]}/`);
          break;
        }
        case 11: {
          mutations.push('fmtp');
          for (let k = 0; k < lines.length; k++) {
            if (lines[k]!.startsWith('a=fmtp:') && this.#rand() < 0.5) {
              lines[k] = lines[k]!.replace(/packetization-mode=\d/, `packetization-mode=${this.#int(3)}`).replace(/profile-level-id=\w+/, `profile-level-id=${this.#garbage(6)}`);
            }
          }
          break;
        }
        case 12: {
          mutations.push('m= line');
          const k = lines.findIndex((l) => l.startsWith('m=video'));
          if (k >= 0) {
            const variants = [
              'm=video 0 UDP/TLS/RTP/SAVPF 96',
              `m=video 9 UDP/TLS/RTP/SAVPF ${Array.from({ length: 1 + this.#int(40) }, () => this.#int(300)).join(' ')}`,
              'm=video 9 RTP/AVP',
              `m=video ${this.#int(1 << 20)} ${this.#garbage(5).replace(/\s/g, '_')} 102`,
              'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
            ];
            lines[k] = variants[this.#int(variants.length)]!;
          }
          break;
        }
        case 13:
          mutations.push('extra m= sections');
          for (let n = 1 + this.#int(20); n > 0; n--) lines.push(this.#rand() < 0.5 ? 'm=video 9 UDP/TLS/RTP/SAVPF 96' : 'm=audio 9 UDP/TLS/RTP/SAVPF 111');
          break;
        case 14: {
          mutations.push('candidates');
          for (let k = 0; k < lines.length; k++) {
            if (lines[k]!.startsWith('a=candidate:')) lines[k] = `a=candidate:${this.#garbage(4)} 1 udp ${this.#int(1 << 31)} ${this.#int(256)}.${this.#int(256)}.0.${this.#int(256)} ${this.#int(70000)} typ ${['host', 'srflx', 'relay', 'x'][this.#int(4)]}`;
          }
          break;
        }
        default: {
          mutations.push('payload types');
          for (let k = 0; k < lines.length; k++) lines[k] = lines[k]!.replace(/^a=(rtpmap|fmtp|rtcp-fb):\d+/, (m) => (this.#rand() < 0.3 ? m.replace(/\d+$/, String(this.#int(300))) : m));
          break;
        }
      }
    }
    const sep = this.#rand() < 0.1 ? '\n' : '\r\n';
    return { sdp: lines.join(sep) + (this.#rand() < 0.9 ? sep : ''), mutations };
  }
}
