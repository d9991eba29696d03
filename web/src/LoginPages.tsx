import { useId, useState, type FormEvent } from 'react';
import { api, ApiError } from './api';
import { refreshAuth, signOut } from './auth';
import { TotpEnrollment } from './TotpSetup';
import { ErrorMessage, useRetryCountdown } from './ui';

/** The sign-in routes; the app sends a session to the one it needs. */
export const LoginRoute = {
  /** Username and password. */
  SignIn: '/login',
  /** The 2FA code (or a recovery code). */
  Code: '/login/code',
  /** 2FA set-up the site requires before anything else. */
  Enroll: '/login/2fa-setup',
} as const;
export type LoginRoute = (typeof LoginRoute)[keyof typeof LoginRoute];

export function isLoginRoute(path: string): path is LoginRoute {
  return (Object.values(LoginRoute) as string[]).includes(path);
}

// After any step the page only asks the server where the session stands; the app then moves on to the
// next step or back to where the user was. One way forward, whatever the server answered.
async function advance(): Promise<void> {
  try {
    await refreshAuth();
  } catch {
    // Unreachable: refreshAuth put the reason in the state, the app shows it.
  }
}

/** Route `/login`: username and password. */
export function LoginPage() {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const left = useRetryCountdown(error);
  const userId = useId();
  const passId = useId();
  const errorId = useId();

  const submit = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const form = new FormData(ev.currentTarget);
    setBusy(true);
    try {
      await api.signIn(String(form.get('username') ?? '').trim(), String(form.get('password') ?? ''));
      setError(null);
      await advance();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const badCredentials = error instanceof ApiError && error.code === 'BAD_CREDENTIALS';
  // The address limit holds whatever is typed; a locked account is only that account, so another
  // username may still be tried while its countdown runs.
  const blocked = left > 0 && error instanceof ApiError && error.code === 'RATE_LIMITED';
  return (
    <section className="login" aria-labelledby="login-heading">
      <h1 id="login-heading">Sign in</h1>
      <form onSubmit={(ev) => void submit(ev)} noValidate>
        <div className="field">
          <label htmlFor={userId}>Username</label>
          <input id={userId} name="username" autoComplete="username" autoCapitalize="none" spellCheck={false} required autoFocus aria-invalid={badCredentials || undefined} aria-describedby={error ? errorId : undefined} />
        </div>
        <div className="field">
          <label htmlFor={passId}>Password</label>
          <input id={passId} name="password" type="password" autoComplete="current-password" required aria-invalid={badCredentials || undefined} aria-describedby={error ? errorId : undefined} />
        </div>
        <div className="form-actions">
          <button type="submit" disabled={busy || blocked} data-testid="login-submit">
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </div>
        {error !== null && <ErrorMessage error={error} id={errorId} testId="login-error" />}
      </form>
    </section>
  );
}

/** Route `/login/code`: the code from the authenticator app, or one of the recovery codes. */
export function CodePage() {
  const [recovery, setRecovery] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const left = useRetryCountdown(error);
  const inputId = useId();
  const errorId = useId();

  const submit = async (ev: FormEvent<HTMLFormElement>): Promise<void> => {
    ev.preventDefault();
    const form = new FormData(ev.currentTarget);
    // Apps show codes as "123 456"; the server wants the digits.
    const proof = recovery
      ? { recoveryCode: String(form.get('recoveryCode') ?? '').trim() }
      : { code: String(form.get('code') ?? '').replace(/\s/g, '') };
    setBusy(true);
    try {
      await api.verifySecondFactor(proof);
      setError(null);
      await advance();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="login" aria-labelledby="code-heading">
      <h1 id="code-heading">Two-factor check</h1>
      <form onSubmit={(ev) => void submit(ev)} noValidate>
        {recovery ? (
          <div className="field" key="recovery">
            <label htmlFor={inputId}>Recovery code</label>
            <input id={inputId} name="recoveryCode" autoComplete="off" autoCapitalize="none" spellCheck={false} placeholder="xxxxx-xxxxx" required autoFocus aria-describedby={error ? errorId : undefined} />
            <span className="muted hint">Each recovery code works once.</span>
          </div>
        ) : (
          <div className="field" key="code">
            <label htmlFor={inputId}>6-digit code from your authenticator app</label>
            <input id={inputId} name="code" inputMode="numeric" autoComplete="one-time-code" maxLength={8} required autoFocus aria-describedby={error ? errorId : undefined} />
          </div>
        )}
        <div className="form-actions">
          <button type="submit" disabled={busy || left > 0} data-testid="code-submit">
            {busy ? 'Checking…' : 'Continue'}
          </button>
          <button
            type="button"
            className="link-button"
            data-testid="use-recovery"
            onClick={() => {
              setRecovery(!recovery);
              setError(null);
            }}
          >
            {recovery ? 'Use the app instead' : 'Use a recovery code'}
          </button>
        </div>
        <ErrorMessage error={error} id={errorId} testId="code-error" />
      </form>
      <p className="muted">
        Not you? <button type="button" className="link-button" onClick={() => void signOut()}>Sign in as someone else</button>
      </p>
    </section>
  );
}

/** Route `/login/2fa-setup`: the site requires 2FA of this role and the user has none yet. */
export function EnrollPage() {
  return (
    <section className="login login-wide" aria-labelledby="enroll-heading">
      <h1 id="enroll-heading">Set up two-factor sign-in</h1>
      <p>This site requires a second factor for your account: a code from an app on your phone, asked at every sign-in.</p>
      <TotpEnrollment onDone={() => void advance()} />
      <p className="muted">
        Not now? <button type="button" className="link-button" onClick={() => void signOut()}>Sign out</button>
      </p>
    </section>
  );
}
