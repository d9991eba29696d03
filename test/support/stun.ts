import dgram from 'node:dgram';

/**
 * A STUN server (RFC 5389, Binding only) on 127.0.0.1 for werift clients in tests and benchmarks. werift
 * always queries a STUN server while gathering (stun.l.google.com when given none, even with
 * `iceServers: []`); on a closed network that name lookup sometimes takes 5 s and stalls gathering.
 * Clients given this one get their answer at once.
 */
export function startStunServer(): Promise<{ url: string; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (msg, rinfo) => {
      // Binding request: type 0x0001, magic cookie 0x2112A442 (RFC 5389 §6).
      if (msg.length < 20 || msg.readUInt16BE(0) !== 0x0001 || msg.readUInt32BE(4) !== 0x2112a442) return;
      const res = Buffer.alloc(32);
      res.writeUInt16BE(0x0101, 0); // Binding success response
      res.writeUInt16BE(12, 2);
      msg.copy(res, 4, 4, 20); // magic cookie and transaction id
      // XOR-MAPPED-ADDRESS (RFC 5389 §15.2): family IPv4, port and address XORed with the cookie.
      res.writeUInt16BE(0x0020, 20);
      res.writeUInt16BE(8, 22);
      res.writeUInt16BE(0x0001, 24);
      res.writeUInt16BE(rinfo.port ^ 0x2112, 26);
      const ip = rinfo.address.split('.').map(Number);
      res.writeUInt32BE((((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) ^ 0x2112a442) >>> 0, 28);
      socket.send(res, rinfo.port, rinfo.address);
    });
    socket.bind(0, '127.0.0.1', () =>
      resolve({ url: `stun:127.0.0.1:${socket.address().port}`, close: () => new Promise<void>((r) => socket.close(() => r())) }),
    );
  });
}

/** The ICE servers werift clients in tests use: the local STUN server that global setup started. */
export function testIceServers(): Array<{ urls: string }> {
  const url = process.env.TEST_STUN_URL;
  return url ? [{ urls: url }] : [];
}
