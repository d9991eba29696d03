import { describe, expect, it } from 'vitest';
import { UnsupportedError, ValidationError } from '@cctv/core';
import {
  MAX_SDP_BYTES, chooseCodec, direction, extensionId, keepOnlyPayloadType, offeredCodecs, parseSdp, rewriteCandidates, serializeSdp,
  type OfferedCodec,
} from './sdp.js';
import { PLAYOUT_DELAY_URI } from './webrtc.js';
import { CHROME_OFFER } from './testing/chromeOffer.js';

const video = (sdp = CHROME_OFFER) => parseSdp(sdp).media.find((m) => m.kind === 'video')!;

/** Expects `fn` to throw `cls` with a message matching `message`. */
function expectError(fn: () => unknown, cls: new (...a: never[]) => Error, message: RegExp): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(cls);
  expect((error as Error).message).toMatch(message);
}

/** A minimal offer with one video section holding `lines`. */
const offerWith = (formats: string, lines: string[]) => ['v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0', `m=video 9 UDP/TLS/RTP/SAVPF ${formats}`, ...lines, ''].join('\r\n');

describe('parseSdp', () => {
  it('refuses what is not an SDP offer, saying what is wrong', () => {
    expectError(() => parseSdp(''), ValidationError, /'sdp' is empty/);
    expectError(() => parseSdp(undefined as unknown as string), ValidationError, /is empty/);
    expectError(() => parseSdp('v=1\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video 9 RTP/AVP 96\r\n'), ValidationError, /must start with 'v=0'/);
    expectError(() => parseSdp('hello world'), ValidationError, /must start with 'v=0'/);
    expectError(() => parseSdp('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nthis is not sdp\r\nm=video 9 RTP/AVP 96\r\n'), ValidationError, /line 3 is not of the form 'x=value'/);
    expectError(() => parseSdp('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nA=upper\r\n'), ValidationError, /line 3/);
    expectError(() => parseSdp('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=x\0y\r\nm=video 9 RTP/AVP 96\r\n'), ValidationError, /line 3 holds a NUL byte/);
    expectError(() => parseSdp('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n'), ValidationError, /has no m= section/);
    expectError(() => parseSdp('v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video nine RTP/AVP 96\r\n'), ValidationError, /line 3 is not a valid m= line/);
    expectError(() => parseSdp('v=0\r\ns=-\r\nm=video 9 RTP/AVP 96\r\n'), ValidationError, /has no 'o=' line/);
    expectError(() => parseSdp(['v=0', 'o=- 1 1 IN IP4 0.0.0.0', ...Array.from({ length: 17 }, () => 'm=video 9 RTP/AVP 96'), ''].join('\r\n')), ValidationError, /more than 16 m= sections/);
  });

  it(`refuses offers larger than ${MAX_SDP_BYTES} bytes, counted in bytes, not characters`, () => {
    const big = CHROME_OFFER + `a=x-filler:${'x'.repeat(MAX_SDP_BYTES)}\r\n`;
    expectError(() => parseSdp(big), ValidationError, new RegExp(`larger than ${MAX_SDP_BYTES} bytes`));
    // 30,000 three-byte characters: fewer characters than the limit, more bytes.
    const wide = CHROME_OFFER + `a=x-filler:${'€'.repeat(30_000)}\r\n`;
    expect(wide.length).toBeLessThan(MAX_SDP_BYTES);
    expectError(() => parseSdp(wide), ValidationError, /larger than/);
    // Just under the limit is fine.
    const fits = CHROME_OFFER + `a=x-filler:${'x'.repeat(MAX_SDP_BYTES - Buffer.byteLength(CHROME_OFFER) - 20)}\r\n`;
    expect(parseSdp(fits).media).toHaveLength(2);
  });

  it('reads a real Chromium offer into its sections and writes it back unchanged', () => {
    const sdp = parseSdp(CHROME_OFFER);
    expect(sdp.session[0]).toBe('v=0');
    expect(sdp.media.map((m) => [m.kind, m.port, m.proto])).toEqual([
      ['audio', 9, 'UDP/TLS/RTP/SAVPF'],
      ['video', 9, 'UDP/TLS/RTP/SAVPF'],
    ]);
    expect(sdp.media[1]!.formats).toHaveLength(34);
    expect(serializeSdp(sdp)).toBe(CHROME_OFFER);
    // Bare LF line ends (some WHEP clients) read the same.
    expect(parseSdp(CHROME_OFFER.replace(/\r\n/g, '\n'))).toEqual(sdp);
  });
});

describe('direction', () => {
  it('reads the direction attribute, sendrecv when absent (RFC 8866 §6.7)', () => {
    expect(direction(video())).toBe('recvonly');
    expect(direction(video(offerWith('96', ['a=rtpmap:96 H264/90000'])))).toBe('sendrecv');
    expect(direction(video(offerWith('96', ['a=inactive'])))).toBe('inactive');
  });
});

describe('offeredCodecs', () => {
  it("lists a real Chromium offer's video codecs in its order, with fmtp and rtcp-fb", () => {
    const codecs = offeredCodecs(video());
    expect(codecs.map((c) => `${c.payloadType} ${c.name}`)).toEqual([
      '96 VP8', '97 rtx', '98 VP9', '99 rtx', '100 VP9', '101 rtx', '35 VP9', '36 rtx', '37 VP9', '38 rtx',
      '102 H264', '103 rtx', '104 H264', '107 rtx', '108 H264', '109 rtx', '114 H264', '115 rtx', '116 H264', '117 rtx',
      '39 H264', '40 rtx', '41 H264', '42 rtx', '43 H264', '44 rtx', '45 AV1', '46 rtx', '47 AV1', '48 rtx',
      '118 red', '119 rtx', '120 ulpfec', '49 flexfec-03',
    ]);
    const h264 = codecs.find((c) => c.payloadType === 108)!;
    expect(h264).toEqual({
      payloadType: 108,
      name: 'H264',
      clockRate: 90000,
      params: { 'level-asymmetry-allowed': '1', 'packetization-mode': '1', 'profile-level-id': '42e01f' },
      fmtp: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
      rtcpFb: ['goog-remb', 'transport-cc', 'ccm fir', 'nack', 'nack pli'],
    });
    expect(codecs.find((c) => c.payloadType === 109)!.params).toEqual({ apt: '108' });
    expect(codecs.find((c) => c.payloadType === 120)).toMatchObject({ name: 'ulpfec', fmtp: '', rtcpFb: [] });
    expect(codecs.find((c) => c.payloadType === 49)).toMatchObject({ name: 'flexfec-03', params: { 'repair-window': '10000000' }, rtcpFb: ['goog-remb', 'transport-cc'] });
  });

  it('applies a=rtcp-fb:* to every codec and ignores lines about payload types not in the m= line', () => {
    const codecs = offeredCodecs(
      video(offerWith('96 97', ['a=rtpmap:96 H264/90000', 'a=rtpmap:97 VP8/90000', 'a=rtpmap:98 H265/90000', 'a=rtcp-fb:* nack', 'a=fmtp:98 x=1', 'a=fmtp:96 Packetization-Mode=1'])),
    );
    expect(codecs.map((c) => [c.name, c.rtcpFb])).toEqual([
      ['H264', ['nack']],
      ['VP8', ['nack']],
    ]);
    // fmtp keys are case-insensitive (RFC 6184 §8.1 media type parameters).
    expect(codecs[0]!.params).toEqual({ 'packetization-mode': '1' });
  });
});

describe('chooseCodec', () => {
  const chrome = offeredCodecs(video());
  const pick = (codecs: OfferedCodec[], camera: 'H264' | 'H265', plid: string | null) => {
    const c = chooseCodec(codecs, camera, plid);
    return { pt: c.offered.payloadType, codec: c.codec, transcode: c.transcode };
  };

  it('picks H.264 with packetization-mode=1, preferring the profile of the stream', () => {
    // Constrained baseline 3.1: Chrome offers exactly that (108).
    expect(pick(chrome, 'H264', '42e01f')).toEqual({ pt: 108, codec: 'H264', transcode: false });
    // Baseline of another level (what libx264 ultrafast sends at 320x240): the first baseline with mode 1
    // (102), never the mode 0 ones.
    expect(pick(chrome, 'H264', '42c00d')).toEqual({ pt: 102, codec: 'H264', transcode: false });
    // Main goes to Chrome's Main (116), High 4:4:4 to its f4001f (41).
    expect(pick(chrome, 'H264', '4d0029')).toEqual({ pt: 116, codec: 'H264', transcode: false });
    expect(pick(chrome, 'H264', 'f4001f')).toEqual({ pt: 41, codec: 'H264', transcode: false });
    // Unknown yet: constrained baseline 3.1 is assumed.
    expect(pick(chrome, 'H264', null)).toEqual({ pt: 108, codec: 'H264', transcode: false });
    // A profile this Chromium does not offer (High): the first mode 1 entry.
    expect(pick(chrome, 'H264', '640028')).toEqual({ pt: 102, codec: 'H264', transcode: false });
    // Where High is offered (Chrome with proprietary codecs lists 64001f), it is taken.
    const withHigh = offeredCodecs(video(offerWith('102 112', ['a=rtpmap:102 H264/90000', 'a=fmtp:102 packetization-mode=1;profile-level-id=42001f', 'a=rtpmap:112 H264/90000', 'a=fmtp:112 packetization-mode=1;profile-level-id=64001f'])));
    expect(pick(withHigh, 'H264', '640028')).toEqual({ pt: 112, codec: 'H264', transcode: false });
  });

  it('never picks packetization-mode 0 (we send FU-A and STAP-A)', () => {
    const mode0 = chrome.filter((c) => c.name !== 'H264' || c.params['packetization-mode'] === '0');
    expectError(() => chooseCodec(mode0, 'H264', '42e01f'), UnsupportedError, /the offer has no H\.264 with packetization-mode=1 \(offered: VP8, rtx, VP9, H264, AV1, red, ulpfec, flexfec-03\)/);
  });

  it('throws UnsupportedError naming what was offered when nothing fits', () => {
    const vp8 = offeredCodecs(video(offerWith('96 97', ['a=rtpmap:96 VP8/90000', 'a=rtpmap:97 rtx/90000', 'a=fmtp:97 apt=96'])));
    expectError(() => chooseCodec(vp8, 'H264', null), UnsupportedError, /no H\.264 with packetization-mode=1 \(offered: VP8, rtx\)/);
    expectError(() => chooseCodec(vp8, 'H265', null), UnsupportedError, /neither H\.265 nor H\.264 with packetization-mode=1 \(offered: VP8, rtx\)/);
    expectError(() => chooseCodec([], 'H264', null), UnsupportedError, /offered: none/);
    // An H.264 at another clock rate is not H.264 we can send.
    const odd = offeredCodecs(video(offerWith('96', ['a=rtpmap:96 H264/48000', 'a=fmtp:96 packetization-mode=1'])));
    expectError(() => chooseCodec(odd, 'H264', null), UnsupportedError, /offered: H264/);
  });

  it('passes H.265 through when offered, and transcodes to H.264 when not', () => {
    const withH265 = offeredCodecs(video(offerWith('96 49', ['a=rtpmap:96 H264/90000', 'a=fmtp:96 packetization-mode=1;profile-level-id=42e01f', 'a=rtpmap:49 H265/90000'])));
    expect(pick(withH265, 'H265', null)).toEqual({ pt: 49, codec: 'H265', transcode: false });
    // HEVC is another name for it.
    const hevc = offeredCodecs(video(offerWith('50', ['a=rtpmap:50 HEVC/90000'])));
    expect(pick(hevc, 'H265', null)).toEqual({ pt: 50, codec: 'H265', transcode: false });
    // An H.264 camera goes as H.264 even to a viewer that also takes H.265.
    expect(pick(withH265, 'H264', '42e01f')).toEqual({ pt: 96, codec: 'H264', transcode: false });
    // Chrome without H.265: the shared transcode.
    expect(pick(chrome, 'H265', null)).toEqual({ pt: 108, codec: 'H264', transcode: true });
    // H.265 only, from an H.264 camera: nothing to send.
    expectError(() => chooseCodec(hevc, 'H264', null), UnsupportedError, /offered: HEVC/);
  });
});

describe('keepOnlyPayloadType', () => {
  it('cuts the section down to the chosen codec: its rtpmap, fmtp and rtcp-fb stay; rtx, RED, FEC and the others go', () => {
    const m = video();
    const before = m.lines.filter((l) => !/^a=(rtpmap|fmtp|rtcp-fb):/.test(l));
    keepOnlyPayloadType(m, 108);
    expect(m.formats).toEqual(['108']);
    expect(m.lines.filter((l) => /^a=(rtpmap|fmtp|rtcp-fb):/.test(l))).toEqual([
      'a=rtpmap:108 H264/90000',
      'a=rtcp-fb:108 goog-remb',
      'a=rtcp-fb:108 transport-cc',
      'a=rtcp-fb:108 ccm fir',
      'a=rtcp-fb:108 nack',
      'a=rtcp-fb:108 nack pli',
      'a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    ]);
    // Everything else (ICE, DTLS, mid, extmaps, direction) is untouched.
    expect(m.lines.filter((l) => !/^a=(rtpmap|fmtp|rtcp-fb):/.test(l))).toEqual(before);
    expect(offeredCodecs(m).map((c) => c.payloadType)).toEqual([108]);
    // The rtx that pointed at 108 (apt=108) went too: its own payload type is 109.
    expect(m.lines.some((l) => l.includes('apt=108'))).toBe(false);
  });

  it('keeps rtcp-fb lines for every payload type (*)', () => {
    const m = video(offerWith('96 97', ['a=rtpmap:96 H264/90000', 'a=rtpmap:97 rtx/90000', 'a=rtcp-fb:* nack', 'a=rtcp-fb:97 nack pli']));
    keepOnlyPayloadType(m, 96);
    expect(m.lines).toEqual(['a=rtpmap:96 H264/90000', 'a=rtcp-fb:* nack']);
  });
});

describe('extensionId', () => {
  it('finds the id the offer gives playout-delay, with or without a direction', () => {
    expect(extensionId(video(), PLAYOUT_DELAY_URI)).toBe(5);
    expect(extensionId(video(offerWith('96', [`a=extmap:9/recvonly ${PLAYOUT_DELAY_URI}`])), PLAYOUT_DELAY_URI)).toBe(9);
    expect(extensionId(video(offerWith('96', ['a=extmap:9 urn:ietf:params:rtp-hdrext:toffset'])), PLAYOUT_DELAY_URI)).toBeNull();
  });
});

describe('rewriteCandidates', () => {
  const answer = [
    'v=0',
    'o=- 1 1 IN IP4 0.0.0.0',
    's=-',
    't=0 0',
    'm=video 9 UDP/TLS/RTP/SAVPF 106',
    'a=candidate:a1 1 udp 2130706431 127.0.0.1 40001 typ host',
    'a=candidate:a2 1 udp 2130706175 10.0.0.5 40002 typ host',
    'a=candidate:a3 1 udp 2130705919 172.17.0.2 40003 typ host',
    'a=candidate:a4 1 udp 1694498815 198.51.100.9 51000 typ srflx raddr 10.0.0.5 rport 40002',
    'a=candidate:a5 1 udp 16777215 192.0.2.1 3478 typ relay raddr 0.0.0.0 rport 0',
    'a=end-of-candidates',
    'a=ice-lite',
    '',
  ].join('\r\n');
  const candidates = (sdp: string) => sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'));

  it('keeps only the host candidates on allowed addresses and drops server-reflexive and relay ones', () => {
    const out = rewriteCandidates(answer, new Set(['127.0.0.1', '10.0.0.5']), []);
    expect(candidates(out)).toEqual(['a=candidate:a1 1 udp 2130706431 127.0.0.1 40001 typ host', 'a=candidate:a2 1 udp 2130706175 10.0.0.5 40002 typ host']);
    // The other lines stay, in order, and the SDP still ends with CRLF.
    expect(out.split('\r\n').filter((l) => !l.startsWith('a=candidate:'))).toEqual(answer.split('\r\n').filter((l) => !l.startsWith('a=candidate:')));
    expect(out.endsWith('\r\n')).toBe(true);
  });

  it('keeps every host candidate when nothing is configured', () => {
    expect(candidates(rewriteCandidates(answer, new Set(), [])).map((l) => l.split(' ')[4])).toEqual(['127.0.0.1', '10.0.0.5', '172.17.0.2']);
  });

  it('announces other addresses on the same ports in place of the local ones (NAT, containers)', () => {
    const out = rewriteCandidates(answer, new Set(['10.0.0.5']), ['203.0.113.7', '2001:db8::1']);
    expect(candidates(out)).toEqual(['a=candidate:a20 1 udp 2130706175 203.0.113.7 40002 typ host', 'a=candidate:a21 1 udp 2130706175 2001:db8::1 40002 typ host']);
  });

  it('writes one line for candidates that map to the same address and port', () => {
    const twice = answer.replace('a=candidate:a2 1 udp 2130706175 10.0.0.5 40002 typ host', 'a=candidate:a2 1 udp 2130706175 10.0.0.5 40002 typ host\r\na=candidate:b2 1 udp 2130706175 10.0.0.5 40002 typ host');
    const out = candidates(rewriteCandidates(twice, new Set(['10.0.0.5']), ['203.0.113.7']));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^a=candidate:\S+ 1 udp 2130706175 203\.0\.113\.7 40002 typ host$/);
  });
});
