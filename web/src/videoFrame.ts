import { useEffect, useState, type CSSProperties, type RefObject } from 'react';

/** Where the picture is drawn inside a video element, in CSS px from the element's top left. */
export interface FrameRect {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Whether the video's size is known; false: the rect is the whole element. */
  known: boolean;
}

const NONE: FrameRect = { x: 0, y: 0, width: 0, height: 0, known: false };

/**
 * The picture's rect inside an `object-fit: contain` video: the picture keeps its aspect ratio and is
 * centred, with bars above and below or left and right. Before the video's size is known (nothing
 * played yet), the whole element.
 */
export function containRect(elementWidth: number, elementHeight: number, videoWidth: number, videoHeight: number): FrameRect {
  if (videoWidth <= 0 || videoHeight <= 0 || elementWidth <= 0 || elementHeight <= 0) {
    return { x: 0, y: 0, width: elementWidth, height: elementHeight, known: false };
  }
  const scale = Math.min(elementWidth / videoWidth, elementHeight / videoHeight);
  const width = videoWidth * scale;
  const height = videoHeight * scale;
  return { x: (elementWidth - width) / 2, y: (elementHeight - height) / 2, width, height, known: true };
}

function same(a: FrameRect, b: FrameRect): boolean {
  return a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height && a.known === b.known;
}

/** The picture's rect inside the video of `ref`, kept up to date as the element or the stream resizes. */
export function useVideoFrame(ref: RefObject<HTMLVideoElement | null>): FrameRect {
  const [rect, setRect] = useState<FrameRect>(NONE);
  useEffect(() => {
    const video = ref.current;
    if (!video) return;
    const measure = (): void => {
      const next = containRect(video.clientWidth, video.clientHeight, video.videoWidth, video.videoHeight);
      setRect((cur) => (same(cur, next) ? cur : next));
    };
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(video);
    // `resize` fires when the stream's picture size changes (a new SPS), `loadedmetadata` when first known.
    video.addEventListener('resize', measure);
    video.addEventListener('loadedmetadata', measure);
    return () => {
      observer.disconnect();
      video.removeEventListener('resize', measure);
      video.removeEventListener('loadedmetadata', measure);
    };
  }, [ref]);
  return rect;
}

/** Absolute-position style that lays an overlay exactly over the picture, in a parent the video fills. */
export function frameStyle(rect: FrameRect): CSSProperties {
  return { left: rect.x, top: rect.y, width: rect.width, height: rect.height };
}
