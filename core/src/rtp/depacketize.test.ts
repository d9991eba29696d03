import { describe, expect, it } from 'vitest';
import { Depacketizer } from './depacketize.js';

const SC = [0, 0, 0, 1];
const bytes = (chunks: Buffer[]) => [...Buffer.concat(chunks)];

describe('Depacketizer', () => {
  it('rebuilds H.264 single NAL units, STAP-A and FU-A, and marks each frame\'s end with the next AUD', () => {
    const d = new Depacketizer('H264');
    const sps = Buffer.from([0x67, 1, 2, 3]);
    const pps = Buffer.from([0x68, 4]);
    const stap = Buffer.concat([Buffer.from([0x18, 0, sps.length]), sps, Buffer.from([0, pps.length]), pps]);
    expect(bytes(d.push(stap, 0, stap.length, 1, false))).toEqual([...SC, ...sps, ...SC, ...pps]);
    // An IDR slice (type 5, NRI 3) in three FU-A fragments.
    const fu = (s: boolean, e: boolean, data: number[]) => Buffer.from([0x7c, (s ? 0x80 : 0) | (e ? 0x40 : 0) | 5, ...data]);
    expect(d.push(fu(true, false, [10, 11]), 0, 4, 2, false)).toEqual([]);
    expect(d.push(fu(false, false, [12]), 0, 3, 3, false)).toEqual([]);
    expect(bytes(d.push(fu(false, true, [13]), 0, 3, 4, true))).toEqual([...SC, 0x65, 10, 11, 12, 13, 0, 0, 0, 1, 0x09, 0xf0]);
    const single = Buffer.from([0x41, 7, 8]);
    expect(bytes(d.push(single, 0, 3, 5, true))).toEqual([...SC, 0x41, 7, 8, 0, 0, 0, 1, 0x09, 0xf0]);
  });

  it('drops a fragmented NAL unit that lost a packet, and goes on with the next', () => {
    const d = new Depacketizer('H264');
    const fu = (s: boolean, e: boolean, data: number[]) => Buffer.from([0x5c, (s ? 0x80 : 0) | (e ? 0x40 : 0) | 1, ...data]);
    d.push(fu(true, false, [1]), 0, 3, 10, false);
    expect(d.push(fu(false, true, [3]), 0, 3, 12, false)).toEqual([]);
    expect(d.stats.dropped).toBe(1);
    d.push(fu(true, false, [4]), 0, 3, 13, false);
    expect(bytes(d.push(fu(false, true, [5]), 0, 3, 14, false))).toEqual([...SC, 0x41, 4, 5]);
  });

  it('rebuilds H.265 aggregation and fragmentation units', () => {
    const d = new Depacketizer('H265');
    const vps = Buffer.from([0x40, 0x01, 9]);
    const ap = Buffer.concat([Buffer.from([0x60, 0x01, 0, vps.length]), vps]);
    expect(bytes(d.push(ap, 0, ap.length, 1, false))).toEqual([...SC, ...vps]);
    // An IDR_W_RADL (19) in two FUs: payload header type 49, FU header S/E + type.
    const fu = (s: boolean, e: boolean, data: number[]) => Buffer.from([49 << 1, 0x01, (s ? 0x80 : 0) | (e ? 0x40 : 0) | 19, ...data]);
    d.push(fu(true, false, [1, 2]), 0, 5, 2, false);
    expect(bytes(d.push(fu(false, true, [3]), 0, 4, 3, true))).toEqual([...SC, 19 << 1, 0x01, 1, 2, 3, 0, 0, 0, 1, 0x46, 0x01, 0x50]);
  });
});
