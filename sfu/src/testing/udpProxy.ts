import dgram from 'node:dgram';

/**
 * A UDP relay put between a WebRTC peer and the SFU, like a NAT: each client address gets its own socket
 * towards the SFU, so the SFU's nominated ICE pair runs through it. `dropToClient` may drop datagrams on
 * their way from the SFU to the client (network loss made to order).
 */
export class UdpProxy {
  readonly #front = dgram.createSocket('udp4');
  readonly #backs = new Map<string, dgram.Socket>();
  #target: { host: string; port: number } | null = null;
  #closed = false;
  /** Datagrams relayed each way. */
  readonly counts = { toTarget: 0, toClient: 0, dropped: 0 };

  constructor(private readonly dropToClient: (buf: Buffer) => boolean = () => false) {
    this.#front.on('error', () => {});
    this.#front.on('message', (buf, rinfo) => {
      if (!this.#target) return;
      const key = `${rinfo.address}:${rinfo.port}`;
      let back = this.#backs.get(key);
      if (!back) {
        back = dgram.createSocket('udp4');
        back.on('error', () => {});
        back.on('message', (reply) => {
          if (this.#closed) return;
          if (this.dropToClient(reply)) {
            this.counts.dropped++;
            return;
          }
          this.counts.toClient++;
          this.#front.send(reply, rinfo.port, rinfo.address);
        });
        back.bind(0, '127.0.0.1', () => back!.setRecvBufferSize(4 * 1024 * 1024));
        this.#backs.set(key, back);
      }
      this.counts.toTarget++;
      back.send(buf, this.#target.port, this.#target.host);
    });
  }

  async bind(): Promise<number> {
    await new Promise<void>((r) => this.#front.bind(0, '127.0.0.1', () => r()));
    // Room for a fast-start burst: the losses here are the ones dropToClient makes, no others.
    this.#front.setRecvBufferSize(4 * 1024 * 1024);
    this.#front.setSendBufferSize(4 * 1024 * 1024);
    return this.port;
  }

  get port(): number {
    return this.#front.address().port;
  }

  /**
   * Points the SFU's answer at the relay: its ICE host candidates get the relay's port, and the relay
   * forwards to the port the first candidate had.
   */
  readonly rewriteAnswer = (sdp: string): string => {
    const m = /^a=candidate:\S+ \d (?:udp|UDP) \d+ (\S+) (\d+) typ host/m.exec(sdp);
    if (!m) throw new Error('the answer has no host candidate to relay');
    this.#target = { host: m[1]!, port: Number(m[2]) };
    return sdp.replace(/^(a=candidate:\S+ \d (?:udp|UDP) \d+ )(\S+) (\d+)( typ host.*)$/gm, (_all, a: string, _h: string, _p: string, rest: string) => `${a}127.0.0.1 ${this.port}${rest}`);
  };

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const sockets = [this.#front, ...this.#backs.values()];
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** RTP rather than STUN, DTLS or RTCP on a muxed port (RFC 7983 §7, RFC 5761 §4). */
export function isRtpDatagram(buf: Buffer): boolean {
  return buf.length >= 12 && buf[0]! >= 128 && buf[0]! <= 191 && !(buf[1]! >= 192 && buf[1]! <= 223);
}
