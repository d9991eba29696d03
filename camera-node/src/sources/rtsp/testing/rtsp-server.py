#!/usr/bin/python3
"""
A small RTSP server for tests: GStreamer's RTSP server (GstRtspServer) on 127.0.0.1 serving a live
test pattern, encoded to H.264 (x264enc) or H.265 (x265enc) with low-latency settings.

    /usr/bin/python3 rtsp-server.py --port 8554 [--path /cam] [--codec h264|h265] [--fps 15] [--gop 15]
                                    [--width 320] [--height 240] [--user u --password p]

Prints `READY <port>` on stdout once it listens, and exits with 0 on SIGTERM or SIGINT.
With --user/--password, RTSP basic auth is required and only that user may play the stream.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description="GStreamer RTSP test server on 127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    p.add_argument("--path", default="/cam", help="mount path; default /cam")
    p.add_argument("--codec", choices=["h264", "h265"], default="h264")
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--gop", type=int, default=None, help="keyframe interval in frames; default fps")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--bitrate", type=int, default=500, help="kbit/s; default 500")
    p.add_argument("--user", default=None)
    p.add_argument("--password", default=None)
    a = p.parse_args()
    if (a.user is None) != (a.password is None):
        p.error("--user and --password go together")
    if not a.path.startswith("/"):
        a.path = "/" + a.path
    if a.gop is None:
        a.gop = a.fps
    return a


def launch_line(a):
    src = (
        "videotestsrc is-live=true pattern=ball "
        f"! video/x-raw,width={a.width},height={a.height},framerate={a.fps}/1,format=I420 "
    )
    if a.codec == "h264":
        # zerolatency: no lookahead, no B-frames, one slice per frame; baseline for any decoder.
        enc = (
            f"! x264enc tune=zerolatency speed-preset=ultrafast bitrate={a.bitrate} key-int-max={a.gop} bframes=0 "
            "! video/x-h264,profile=baseline "
            # config-interval=-1: SPS/PPS in band before every IDR, so a client can start at any keyframe.
            "! rtph264pay name=pay0 pt=96 config-interval=-1"
        )
    else:
        enc = (
            f"! x265enc tune=zerolatency speed-preset=ultrafast bitrate={a.bitrate} key-int-max={a.gop} "
            "option-string=bframes=0:repeat-headers=1 "
            "! video/x-h265,profile=main "
            "! rtph265pay name=pay0 pt=96 config-interval=-1"
        )
    return f"( {src}{enc} )"


def main():
    a = parse_args()
    Gst.init(None)
    loop = GLib.MainLoop()

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(a))
    # A pipeline per client. A shared one (as a camera's single sensor would be) aborts Debian 12's
    # GStreamer 1.22 now and then when two clients set up at once: the assertion in
    # gst_rtsp_media_get_rates (rtsp-media.c) kills the server with SIGABRT, and every camera of the
    # test sees "Connection refused". The camera-node side is the same either way.
    factory.set_shared(False)

    if a.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, a.user)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
        server.set_auth(auth)
        # Only the role of that user may see and build the media; anonymous clients get 401.
        role = Gst.Structure.new_from_string(
            f"{a.user}, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )
        factory.add_role_from_structure(role)

    server.get_mount_points().add_factory(a.path, factory)

    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{a.port}", file=sys.stderr, flush=True)
        sys.exit(1)

    def stop():
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, stop)

    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
