import { useEffect, useMemo, useState, type ReactNode } from 'react';
import { ApiError } from './api';

/** What to tell the user about a failed call: the server's message, or that it could not be reached. */
export function messageOf(error: unknown): string {
  if (!(error instanceof ApiError)) return `cannot reach the server: ${(error as Error).message}`;
  switch (error.code) {
    case 'FORBIDDEN':
      // The server's message says which permission or rule; the user first needs to know it is a no.
      return `You may not do this (${error.message}).`;
    case 'CSRF_FAILED':
      return `The server refused a request that did not come from this page (${error.message}). Reload the page and try again.`;
    case 'ACCOUNT_LOCKED':
      return 'Too many failed attempts: this account is locked for a while.';
    case 'RATE_LIMITED':
      return 'Too many attempts from here.';
    default:
      return error.message;
  }
}

/** Seconds until `error`'s Retry-After has passed, counting down; 0 without one. */
export function useRetryCountdown(error: unknown): number {
  const seconds = error instanceof ApiError ? error.retryAfterS : undefined;
  // The deadline is fixed when the error arrives; a new error (even with the same seconds) starts again.
  const until = useMemo(() => (seconds === undefined ? null : Date.now() + seconds * 1000), [error, seconds]);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (until === null) return;
    setNow(Date.now());
    const timer = setInterval(() => {
      setNow(Date.now());
      if (Date.now() >= until) clearInterval(timer);
    }, 1000);
    return () => clearInterval(timer);
  }, [until]);
  return until === null ? 0 : Math.max(0, Math.ceil((until - now) / 1000));
}

/** A failed call, said in a sentence, with a countdown when the server said how long to wait. */
export function ErrorMessage({ error, id, testId }: { error: unknown; id?: string; testId?: string }) {
  const left = useRetryCountdown(error);
  if (error === null || error === undefined) return null;
  const waits = error instanceof ApiError && error.retryAfterS !== undefined;
  return (
    <p id={id} className="error-text" role="alert" data-testid={testId}>
      {typeof error === 'string' ? error : messageOf(error)}
      {waits && (left > 0 ? ` Try again in ${left} s.` : ' You can try again now.')}
    </p>
  );
}

/** A date and time in the user's locale; '–' for none. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** A length of time in a few words: `42 s`, `3 min 5 s`, `2 h 10 min`. */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A moment as a datetime-local input wants it: local time to the second, no offset. */
export function localInputValue(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

/** A datetime-local input's value as ms since the epoch; undefined when empty or unreadable. */
export function fromLocalInput(value: string): number | undefined {
  if (!value) return undefined;
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? undefined : t;
}

/** A share 0–1 as a percentage for people: `12 %`, `0.5 %`. */
export function percent(share: number): string {
  const p = share * 100;
  return `${p >= 10 || p === 0 ? p.toFixed(0) : p >= 1 ? p.toFixed(1) : p.toFixed(2)} %`;
}

/** Copies `text` to the clipboard and says so for a moment. */
export function CopyButton({ text, label = 'Copy', testId }: { text: string; label?: string; testId?: string }) {
  const [done, setDone] = useState<'copied' | 'failed' | null>(null);
  useEffect(() => {
    if (done === null) return;
    const timer = setTimeout(() => setDone(null), 2000);
    return () => clearTimeout(timer);
  }, [done]);
  const copy = (): void => {
    // The clipboard API needs a secure context (HTTPS or localhost); over plain HTTP the user selects by hand.
    if (!navigator.clipboard) return setDone('failed');
    navigator.clipboard.writeText(text).then(
      () => setDone('copied'),
      () => setDone('failed'),
    );
  };
  return (
    <button type="button" onClick={copy} data-testid={testId}>
      {done === 'copied' ? 'Copied' : done === 'failed' ? 'Select and copy by hand' : label}
    </button>
  );
}

/**
 * A button that asks in the page before doing something that cannot be undone (no window.confirm: it
 * blocks the page, and some browsers silence it).
 */
export function ConfirmButton({
  label,
  question,
  confirmLabel,
  onConfirm,
  disabled,
  testId,
}: {
  label: string;
  question: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  disabled?: boolean;
  testId?: string;
}) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button type="button" onClick={() => setAsking(true)} disabled={disabled} data-testid={testId}>
        {label}
      </button>
    );
  }
  return (
    <span className="confirm" role="group">
      <span>{question}</span>
      <button
        type="button"
        className="danger"
        disabled={disabled}
        data-testid={testId ? `${testId}-confirm` : undefined}
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

/** A page only some may see: says so instead of showing a page of refusals. */
export function NotAllowed() {
  return (
    <section>
      <h1>Not allowed</h1>
      <p className="muted">You may not do this: your role does not include this page.</p>
    </section>
  );
}
