import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';
import { testIceServers } from '../../test/support/stun.js';

/** A werift peer on 127.0.0.1 that knows one codec: H.264 packetization-mode 1, constrained baseline. */
export function loopbackH264Peer(): RTCPeerConnection {
  return new RTCPeerConnection({
    // The benchmark's local STUN server (werift would otherwise look up a public one and may stall).
    iceServers: testIceServers(),
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    codecs: {
      video: [
        new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
          parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
        }),
      ],
    },
  });
}
