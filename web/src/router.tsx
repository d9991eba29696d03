import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react';

// A router of a handful of routes does not need a library: the path is the state, history is the store.

function subscribe(onChange: () => void): () => void {
  window.addEventListener('popstate', onChange);
  return () => window.removeEventListener('popstate', onChange);
}

/** The current location.pathname; re-renders on navigation. */
export function usePath(): string {
  return useSyncExternalStore(subscribe, () => location.pathname);
}

/** The current location.search (`?next=…`); re-renders on navigation. */
export function useSearch(): string {
  return useSyncExternalStore(subscribe, () => location.search);
}

/** Goes to `to` (a path, with a query if need be); `replace` for redirects, which Back should skip. */
export function navigate(to: string, { replace = false }: { replace?: boolean } = {}): void {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new PopStateEvent('popstate'));
  window.scrollTo(0, 0);
}

/** An <a> that navigates in the page; modified clicks (new tab…) stay the browser's. */
export function Link({ to, onClick, ...rest }: { to: string } & Omit<AnchorHTMLAttributes<HTMLAnchorElement>, 'href'>) {
  const handle = (ev: MouseEvent<HTMLAnchorElement>): void => {
    onClick?.(ev);
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={handle} {...rest} />;
}
