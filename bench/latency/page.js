// The measurement that runs in the browser (plain JS: it is sent to the page as source text).
// Types of what it returns are in page.ts.
async function measureInPage(args) {
  const out = { samples: [], firstFrameMs: null, answerMs: null, badReads: 0, stats: null, error: null };
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.appendChild(video);
  const canvas = document.createElement('canvas');
  canvas.width = 640;
  canvas.height = 16;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const origin = performance.timeOrigin;
  const pc = new RTCPeerConnection();
  out.events = [];
  pc.oniceconnectionstatechange = () => out.events.push(['ice-' + pc.iceConnectionState, Math.round(performance.now() - t0)]);
  pc.onconnectionstatechange = () => out.events.push([pc.connectionState, Math.round(performance.now() - t0)]);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.ontrack = (e) => {
    // Ask for the smallest jitter buffer the browser allows.
    e.receiver.jitterBufferTarget = 0;
    video.srcObject = new MediaStream([e.track]);
  };
  let t0 = performance.now();
  await pc.setLocalDescription(await pc.createOffer());
  t0 = performance.now();
  const res = await fetch(args.whepUrl, { method: 'POST', body: pc.localDescription.sdp, headers: { 'content-type': 'application/sdp', ...args.headers } });
  if (res.status !== 201) {
    out.error = `WHEP ${res.status}: ${await res.text()}`;
    return out;
  }
  const location = new URL(res.headers.get('location'), args.whepUrl).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  out.answerMs = performance.now() - t0;
  let recording = false;
  const onFrame = (_now, md) => {
    const cbAt = origin + performance.now();
    if (out.firstFrameMs === null) out.firstFrameMs = performance.now() - t0;
    const vw = video.videoWidth;
    if (recording && vw > 0) {
      // The timecode row is 40 blocks of 16 px at the top of a 640-wide frame; scale if the frame differs.
      ctx.drawImage(video, 0, 0, vw, (16 * vw) / 640, 0, 0, 640, 16);
      const d = ctx.getImageData(0, 0, 640, 16).data;
      const bytes = [0, 0, 0, 0, 0];
      for (let k = 0; k < 40; k++) bytes[k >> 3] = (bytes[k >> 3] << 1) | (d[(8 * 640 + k * 16 + 8) * 4] > 128 ? 1 : 0);
      if (((bytes[0] + bytes[1] + bytes[2] + bytes[3]) & 255) === bytes[4]) {
        const lo = bytes[0] * 2 ** 24 + (bytes[1] << 16) + (bytes[2] << 8) + bytes[3];
        let src = Math.floor(cbAt / 2 ** 32) * 2 ** 32 + lo;
        if (src > cbAt + 2 ** 31) src -= 2 ** 32;
        out.samples.push({ src, display: origin + md.expectedDisplayTime, callback: cbAt, receive: md.receiveTime ? origin + md.receiveTime : 0 });
      } else {
        out.badReads++;
      }
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  await new Promise((r) => setTimeout(r, args.warmupS * 1000));
  recording = true;
  await new Promise((r) => setTimeout(r, args.seconds * 1000));
  recording = false;
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.stats = {
        jitterBufferMs: (s.jitterBufferDelay / (s.jitterBufferEmittedCount || 1)) * 1000,
        framesDropped: s.framesDropped ?? 0,
        packetsLost: s.packetsLost ?? 0,
        nacks: s.nackCount ?? 0,
        plis: s.pliCount ?? 0,
      };
    }
  });
  await fetch(location, { method: 'DELETE', headers: args.headers }).catch(() => {});
  pc.close();
  video.remove();
  return out;
}
