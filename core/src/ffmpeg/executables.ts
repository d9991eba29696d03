import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { NotFoundError } from '../errors.js';

/** The full path of `name` on PATH (or `name` itself when it is a path that exists), or null. */
export function findExecutable(name: string, path = process.env.PATH ?? ''): string | null {
  const candidates = name.includes('/') ? [name] : path.split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}

/** Like findExecutable, but throws a NotFoundError that says how to get it. */
export function requireExecutable(name: string, hint: string): string {
  const p = findExecutable(name);
  if (!p) throw new NotFoundError(`'${name}' was not found on PATH; ${hint}`);
  return p;
}
