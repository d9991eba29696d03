/** What the recorder and its storage worker say to each other, and the storage's identity file. */

export const IDENTITY_FILE = '.cctv-storage.json';

export interface StorageIdentity {
  storageId: string;
  site: string;
  createdAt: string;
}

export type WorkerRequest =
  | { id: number; op: 'probe'; root: string; requireMount: boolean }
  | { id: number; op: 'init'; root: string; identity: StorageIdentity }
  | { id: number; op: 'mkdir'; root: string }
  | { id: number; op: 'put'; root: string; rel: string; src: string; sha256: string; requireMount: boolean }
  | { id: number; op: 'putData'; root: string; rel: string; data: Uint8Array; sha256: string; requireMount: boolean }
  | { id: number; op: 'hash'; root: string; rel: string }
  | { id: number; op: 'read'; root: string; rel: string }
  | { id: number; op: 'remove'; root: string; rel: string }
  | { id: number; op: 'list'; root: string; rel: string };

export interface ProbeResult {
  exists: boolean;
  isMount: boolean;
  /** Entries in the directory, excluding the identity file (0 for an empty, perhaps unmounted, directory). */
  entries: number;
  identity: StorageIdentity | null;
  freeBytes: number;
  totalBytes: number;
  /** A file could be written, synced, read and removed. */
  writable: boolean;
  writeError: { code: string; message: string } | null;
}
