import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { api, type TotpSetup as Setup } from './api';
import { CopyButton, ErrorMessage } from './ui';

/**
 * The QR code as an image. The Content-Security-Policy forbids inline styles, which an inline <svg> of
 * this kind carries, but allows `img-src data:`: a data URL renders the same SVG as a plain picture.
 */
function qrSrc(svg: string): string {
  return `data:image/svg+xml;utf8,${encodeURIComponent(svg)}`;
}

/** The recovery codes as a text file, named after the site so several can sit in one folder. */
function codesFile(codes: readonly string[]): string {
  const text = `CCTV recovery codes (${location.host}), made ${new Date().toLocaleString()}.\nEach works once, in place of a code from the app.\n\n${codes.join('\n')}\n`;
  return `data:text/plain;charset=utf-8,${encodeURIComponent(text)}`;
}

/**
 * Recovery codes, shown once: the server keeps only their hashes. The user moves on by saying they
 * saved them, so nobody leaves the page without having seen that they must.
 */
export function RecoveryCodes({ codes, onSaved }: { codes: readonly string[]; onSaved: () => void }) {
  const headingId = useId();
  return (
    <section className="panel once" aria-labelledby={headingId}>
      <h3 id={headingId}>Your recovery codes</h3>
      <p>
        Each code signs you in once if you lose your phone. <strong>They are shown only now:</strong> save them
        somewhere safe (a password manager, or printed) before you go on.
      </p>
      <ol className="codes" data-testid="recovery-codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ol>
      <div className="form-actions">
        <CopyButton text={codes.join('\n')} label="Copy all" testId="recovery-copy" />
        <a className="button" href={codesFile(codes)} download="cctv-recovery-codes.txt" data-testid="recovery-download">
          Download as text
        </a>
        <button type="submit" onClick={onSaved} data-testid="recovery-saved">
          I have saved them
        </button>
      </div>
    </section>
  );
}

/**
 * Setting up 2FA: 1. the server makes a key (POST /api/auth/2fa/setup) and we show it as a QR code
 * and as text; 2. the user proves their app has it with a code (enable); 3. the recovery codes are
 * shown once; then `onDone`.
 */
export function TotpEnrollment({ onDone, onCancel }: { onDone: () => void; onCancel?: () => void }) {
  const [setup, setSetup] = useState<Setup | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const codeId = useId();
  const errorId = useId();
  // Every set-up call replaces the key being set up: StrictMode's second effect run must not make a
  // second key, or the QR code shown could be the one the server already dropped.
  const started = useRef(false);

  const begin = async (): Promise<void> => {
    setError(null);
    try {
      setSetup(await api.beginTotp());
    } catch (e) {
      setError(e);
    }
  };

  useEffect(() => {
    if (started.current) return;
    started.current = true;
    void begin();
  }, []);

  const enable = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const code = String(new FormData(ev.currentTarget).get('totpCode') ?? '').replace(/\s/g, '');
    setBusy(true);
    try {
      setCodes((await api.enableTotp(code)).recoveryCodes);
      setError(null);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  if (codes) return <RecoveryCodes codes={codes} onSaved={onDone} />;

  return (
    <div className="panel totp-setup">
      {!setup ? (
        error ? (
          <div className="form-actions">
            <ErrorMessage error={error} />
            <button type="button" onClick={() => void begin()}>
              Try again
            </button>
          </div>
        ) : (
          <p className="muted">Making a key…</p>
        )
      ) : (
        <>
          <ol className="steps">
            <li>
              Open an authenticator app (Aegis, Google Authenticator, 1Password, …) and scan this code:
              <img className="qr" src={qrSrc(setup.qrSvg)} alt="QR code of your 2FA key" width={200} height={200} data-testid="totp-qr" />
              <p className="muted">
                Cannot scan? Type this key into the app (time-based, 6 digits, every 30 seconds):
              </p>
              <p className="secret-line">
                <code className="secret" data-testid="totp-secret">{setup.secret}</code> <CopyButton text={setup.secret} label="Copy key" />
              </p>
            </li>
            <li>
              <form onSubmit={(ev) => void enable(ev)} className="inline-form" noValidate>
                <label htmlFor={codeId}>Enter the 6-digit code the app shows</label>
                <input
                  id={codeId}
                  name="totpCode"
                  inputMode="numeric"
                  autoComplete="one-time-code"
                  maxLength={8}
                  required
                  aria-invalid={error ? true : undefined}
                  aria-describedby={error ? errorId : undefined}
                />
                <button type="submit" disabled={busy} data-testid="totp-enable">
                  {busy ? 'Checking…' : 'Turn on 2FA'}
                </button>
                {onCancel && (
                  <button type="button" onClick={onCancel}>
                    Cancel
                  </button>
                )}
              </form>
              <ErrorMessage error={error} id={errorId} />
            </li>
          </ol>
        </>
      )}
    </div>
  );
}
