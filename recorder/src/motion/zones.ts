import type { MotionConfig } from '@cctv/core';

/** A zone as cells of the model's grid. */
export interface ZoneCells {
  name: string;
  /** Indexes (row × cols + col) of its cells that are not masked. */
  cells: Uint32Array;
  /** How much a cell must change to count as moving (0–1). */
  threshold: number;
  /** The share of its cells that must be moving. */
  minArea: number;
}

export interface CompiledZones {
  cols: number;
  rows: number;
  include: ZoneCells[];
  /** 1 where a mask covers the cell: motion there is ignored. */
  masked: Uint8Array;
  /** Cells not masked, for the light-change rule. */
  open: number;
  /** The lowest threshold of any include zone. */
  minThreshold: number;
}

/** Whether (x, y) is inside the polygon (even–odd rule). */
export function insidePolygon(x: number, y: number, points: ReadonlyArray<readonly [number, number]>): boolean {
  let inside = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i]!;
    const [xj, yj] = points[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/**
 * Turns a camera's zones (polygons in shares of the picture) into cells of the model's grid: a cell
 * belongs to a zone when its centre is inside. A zone too small to hold a cell centre gets the cell under
 * its centroid, so a small zone still watches something. Without include zones the whole picture is the
 * include zone `all`, with the camera's threshold and minimum area.
 *
 * `coveredW`/`coveredH` are the share of the picture the grid covers (the model pools whole cells only,
 * so a picture whose size is not a multiple of the cell leaves a sliver out).
 */
export function compileZones(motion: Pick<MotionConfig, 'zones' | 'threshold' | 'minArea'>, cols: number, rows: number, coveredW = 1, coveredH = 1): CompiledZones {
  const masked = new Uint8Array(cols * rows);
  const centre = (i: number): [number, number] => [(((i % cols) + 0.5) / cols) * coveredW, ((Math.floor(i / cols) + 0.5) / rows) * coveredH];
  for (const z of motion.zones) {
    if (z.kind !== 'mask') continue;
    for (let i = 0; i < cols * rows; i++) if (insidePolygon(...centre(i), z.points)) masked[i] = 1;
  }
  const includes = motion.zones.filter((z) => z.kind === 'include');
  const include: ZoneCells[] = [];
  const defs = includes.length > 0 ? includes : [{ name: 'all', points: [[0, 0], [1, 0], [1, 1], [0, 1]] as Array<[number, number]>, threshold: motion.threshold, minArea: motion.minArea }];
  for (const z of defs) {
    const cells: number[] = [];
    for (let i = 0; i < cols * rows; i++) if (!masked[i] && insidePolygon(...centre(i), z.points)) cells.push(i);
    if (cells.length === 0) {
      const cx = z.points.reduce((s, p) => s + p[0], 0) / z.points.length;
      const cy = z.points.reduce((s, p) => s + p[1], 0) / z.points.length;
      const i = Math.min(rows - 1, Math.floor((cy / coveredH) * rows)) * cols + Math.min(cols - 1, Math.floor((cx / coveredW) * cols));
      if (!masked[i]) cells.push(i);
    }
    include.push({ name: z.name, cells: Uint32Array.from(cells), threshold: z.threshold, minArea: z.minArea });
  }
  let open = 0;
  for (let i = 0; i < masked.length; i++) if (!masked[i]) open++;
  return { cols, rows, include, masked, open, minThreshold: Math.min(...include.map((z) => z.threshold)) };
}
