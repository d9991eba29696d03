import { UnsupportedError, ValidationError, type VideoCodec } from '@cctv/core';

/**
 * The little SDP handling the WHEP door needs (RFC 8866): check an offer, list its video codecs, and cut
 * it down to the one codec we will send, so that the WebRTC stack answers with exactly that one.
 */

/** One m= section: its m= line and the lines under it. */
export interface SdpMedia {
  kind: string;
  port: number;
  proto: string;
  formats: string[];
  /** Every line after the m= line, in order, without line ends. */
  lines: string[];
}

export interface ParsedSdp {
  session: string[];
  media: SdpMedia[];
}

/** A codec offered in a video section. */
export interface OfferedCodec {
  payloadType: number;
  /** Encoding name as written (H264, H265, VP8, rtx…). */
  name: string;
  clockRate: number;
  /** fmtp parameters, keys lower-cased. */
  params: Record<string, string>;
  /** The fmtp value as written, or ''. */
  fmtp: string;
  /** rtcp-fb values for this payload type (e.g. `nack`, `nack pli`). */
  rtcpFb: string[];
}

/** Largest offer accepted, in bytes: real offers are 2–10 kB. */
export const MAX_SDP_BYTES = 64 * 1024;

/** Parses an SDP offer; throws a ValidationError saying what is wrong with it. */
export function parseSdp(text: string): ParsedSdp {
  if (typeof text !== 'string' || text.length === 0) throw new ValidationError('sdp', 'is empty');
  if (Buffer.byteLength(text) > MAX_SDP_BYTES) throw new ValidationError('sdp', `is larger than ${MAX_SDP_BYTES} bytes`);
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines[0] !== 'v=0') throw new ValidationError('sdp', "must start with 'v=0'");
  const out: ParsedSdp = { session: [], media: [] };
  let cur: SdpMedia | null = null;
  for (const [i, line] of lines.entries()) {
    if (!/^[a-z]=/.test(line)) throw new ValidationError('sdp', `line ${i + 1} is not of the form 'x=value'`);
    if (/[\0]/.test(line)) throw new ValidationError('sdp', `line ${i + 1} holds a NUL byte`);
    if (line.startsWith('m=')) {
      const m = /^m=([a-z]+) (\d+)(?:\/\d+)? (\S+)((?: \S+)*)$/.exec(line);
      if (!m) throw new ValidationError('sdp', `line ${i + 1} is not a valid m= line`);
      cur = { kind: m[1]!, port: Number(m[2]), proto: m[3]!, formats: m[4]!.trim().split(' ').filter(Boolean), lines: [] };
      out.media.push(cur);
    } else if (cur) {
      cur.lines.push(line);
    } else {
      out.session.push(line);
    }
  }
  if (out.media.length === 0) throw new ValidationError('sdp', 'has no m= section');
  if (out.media.length > 16) throw new ValidationError('sdp', 'has more than 16 m= sections');
  if (!out.session.some((l) => l.startsWith('o='))) throw new ValidationError('sdp', "has no 'o=' line");
  return out;
}

export function serializeSdp(sdp: ParsedSdp): string {
  const lines = [...sdp.session];
  for (const m of sdp.media) {
    lines.push(`m=${m.kind} ${m.port} ${m.proto} ${m.formats.join(' ')}`, ...m.lines);
  }
  return lines.join('\r\n') + '\r\n';
}

/** The direction attribute of a section (default sendrecv, RFC 8866 §6.7). */
export function direction(m: SdpMedia): string {
  for (const l of m.lines) {
    const d = /^a=(sendrecv|sendonly|recvonly|inactive)$/.exec(l);
    if (d) return d[1]!;
  }
  return 'sendrecv';
}

/** The codecs of a section, in the offer's order of preference. */
export function offeredCodecs(m: SdpMedia): OfferedCodec[] {
  const byPt = new Map<number, OfferedCodec>();
  for (const f of m.formats) {
    const pt = Number(f);
    if (Number.isInteger(pt) && pt >= 0 && pt <= 127) byPt.set(pt, { payloadType: pt, name: '', clockRate: 0, params: {}, fmtp: '', rtcpFb: [] });
  }
  for (const l of m.lines) {
    let r = /^a=rtpmap:(\d+) ([^/\s]+)\/(\d+)/.exec(l);
    if (r) {
      const c = byPt.get(Number(r[1]));
      if (c) {
        c.name = r[2]!;
        c.clockRate = Number(r[3]);
      }
      continue;
    }
    r = /^a=fmtp:(\d+) (.*)$/.exec(l);
    if (r) {
      const c = byPt.get(Number(r[1]));
      if (c) {
        c.fmtp = r[2]!.trim();
        for (const kv of c.fmtp.split(';')) {
          const [k, v] = kv.split('=');
          if (k && v !== undefined) c.params[k.trim().toLowerCase()] = v.trim();
        }
      }
      continue;
    }
    r = /^a=rtcp-fb:(\d+|\*) (.+)$/.exec(l);
    if (r) {
      const targets = r[1] === '*' ? [...byPt.values()] : [byPt.get(Number(r[1]))].filter((c): c is OfferedCodec => !!c);
      for (const c of targets) c.rtcpFb.push(r[2]!.trim());
    }
  }
  return [...byPt.values()].filter((c) => c.name !== '');
}

/** The payload type, extension id and codec a viewer will be sent. */
export interface CodecChoice {
  /** The offered codec we send, with the viewer's payload type. */
  offered: OfferedCodec;
  /** The codec of what we send. */
  codec: VideoCodec;
  /** True when the camera is H.265 and this viewer gets the shared H.264 transcode. */
  transcode: boolean;
}

/**
 * Picks what to send a viewer, given what the camera sends. H.264 needs packetization-mode=1 (we send
 * FU-A/STAP-A); among those the offer's profile matching the stream's is preferred (RFC 6184 §8.1).
 * An H.265 camera goes as is to a viewer that offers H.265, else through the shared H.264 transcode.
 */
export function chooseCodec(codecs: OfferedCodec[], camera: VideoCodec, streamProfileLevelId: string | null): CodecChoice {
  const h265 = codecs.find((c) => /^(H265|HEVC)$/i.test(c.name) && c.clockRate === 90000);
  if (camera === 'H265' && h265) return { offered: h265, codec: 'H265', transcode: false };
  const h264 = codecs.filter((c) => /^H264$/i.test(c.name) && c.clockRate === 90000 && c.params['packetization-mode'] === '1');
  if (h264.length === 0) {
    const offered = [...new Set(codecs.map((c) => c.name))].join(', ') || 'none';
    throw new UnsupportedError(
      camera === 'H265'
        ? `the offer has neither H.265 nor H.264 with packetization-mode=1 (offered: ${offered})`
        : `the offer has no H.264 with packetization-mode=1 (offered: ${offered})`,
    );
  }
  const want = (streamProfileLevelId ?? '42e01f').toLowerCase();
  const profile = (plid: string | undefined): string => (plid ?? '42001f').toLowerCase().slice(0, 2);
  const exact = h264.find((c) => (c.params['profile-level-id'] ?? '').toLowerCase() === want);
  const sameProfile = h264.find((c) => profile(c.params['profile-level-id']) === want.slice(0, 2));
  return { offered: exact ?? sameProfile ?? h264[0]!, codec: 'H264', transcode: camera === 'H265' };
}

/**
 * Picks what a WHIP publisher may send (RFC 9725 §4.2): H.264 with packetization-mode=1 (what the
 * ingest and every viewer take; the first offered wins), else H.265. Anything else is refused, naming
 * what was offered.
 */
export function choosePublisherCodec(codecs: OfferedCodec[]): { offered: OfferedCodec; codec: VideoCodec } {
  const h264 = codecs.find((c) => /^H264$/i.test(c.name) && c.clockRate === 90000 && c.params['packetization-mode'] === '1');
  if (h264) return { offered: h264, codec: 'H264' };
  const h265 = codecs.find((c) => /^(H265|HEVC)$/i.test(c.name) && c.clockRate === 90000);
  if (h265) return { offered: h265, codec: 'H265' };
  const offered = [...new Set(codecs.map((c) => (/^H264$/i.test(c.name) ? `H264 packetization-mode=${c.params['packetization-mode'] ?? '0'}` : c.name)))].join(', ') || 'none';
  throw new UnsupportedError(`the offer has neither H.264 with packetization-mode=1 nor H.265 (offered: ${offered})`);
}

/**
 * Cuts a video section down to one payload type (its rtpmap, fmtp and rtcp-fb lines stay; RTX, RED and
 * FEC go), so the answer carries exactly the codec chosen.
 */
export function keepOnlyPayloadType(m: SdpMedia, pt: number): void {
  m.formats = [String(pt)];
  m.lines = m.lines.filter((l) => {
    const r = /^a=(rtpmap|fmtp|rtcp-fb):(\d+|\*)[ ]/.exec(l);
    return !r || r[2] === '*' || Number(r[2]) === pt;
  });
}

/** The id the offer gives an RTP header extension URI in a section, or null. */
export function extensionId(m: SdpMedia, uri: string): number | null {
  for (const l of m.lines) {
    const r = /^a=extmap:(\d+)(?:\/\w+)? (\S+)/.exec(l);
    if (r && r[2] === uri) return Number(r[1]);
  }
  return null;
}

/** Keeps only host candidates whose address is allowed, and adds announced addresses with the same ports. */
export function rewriteCandidates(sdp: string, allowed: ReadonlySet<string>, announced: readonly string[]): string {
  const lines = sdp.split(/\r?\n/);
  const out: string[] = [];
  for (const l of lines) {
    const r = /^a=candidate:(\S+) (\d) (udp|UDP) (\d+) (\S+) (\d+) typ host(.*)$/.exec(l);
    if (!r) {
      if (!l.startsWith('a=candidate:')) out.push(l);
      continue;
    }
    if (allowed.size > 0 && !allowed.has(r[5]!)) continue;
    if (announced.length > 0) {
      // Announced addresses stand in for the local ones (NAT, containers): same port, same socket.
      announced.forEach((addr, i) => out.push(`a=candidate:${r[1]}${i} ${r[2]} ${r[3]} ${r[4]} ${addr} ${r[6]} typ host${r[7]}`));
    } else {
      out.push(l);
    }
  }
  // Keep one of each line (several local sockets may have mapped to one announced address).
  return [...new Map(out.map((l, i) => [l.startsWith('a=candidate:') ? l.replace(/^a=candidate:\S+ /, '') : `${i}`, l])).values()].join('\r\n');
}
