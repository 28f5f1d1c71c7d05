// The dashboard's entry: the session, the sign-in form, the shell (navigation, theme, sign-out) and
// the page the location hash names. The gateway key typed here goes to the server once and is
// dropped: the page keeps only an anti-CSRF token, in memory.

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { loadSession, onSessionEnded, signIn, signOut, type Session } from './api.ts';
import { ErrorBox, Field, Loading, Notice } from './components.tsx';
import { timezone } from './format.ts';
import { AlertsPage } from './pages/alerts.tsx';
import { ApprovalsPage } from './pages/approvals.tsx';
import { AuditPage } from './pages/audit.tsx';
import { OverviewPage } from './pages/overview.tsx';
import { ProvidersPage } from './pages/providers.tsx';
import { RotationPage } from './pages/rotation.tsx';
import { SettingsPage } from './pages/settings.tsx';
import { TeamsPage } from './pages/teams.tsx';
import { UsagePage } from './pages/usage.tsx';

const PAGES = [
  { slug: 'overview', name: 'Overview', Page: OverviewPage },
  { slug: 'providers', name: 'Providers', Page: ProvidersPage },
  { slug: 'teams', name: 'Teams', Page: TeamsPage },
  { slug: 'approvals', name: 'Approvals', Page: ApprovalsPage },
  { slug: 'usage', name: 'Usage', Page: UsagePage },
  { slug: 'alerts', name: 'Alerts', Page: AlertsPage },
  { slug: 'rotation', name: 'Rotation', Page: RotationPage },
  { slug: 'settings', name: 'Settings', Page: SettingsPage },
  { slug: 'audit', name: 'Audit log', Page: AuditPage },
] as const;

const currentSlug = () => location.hash.replace(/^#\/?/, '') || 'overview';

function applyTheme(theme: string): void {
  document.documentElement.dataset.theme = theme;
}

function SignIn({ onSignedIn, notice }: { onSignedIn(session: Session): void; notice?: string }) {
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const field = form.elements.namedItem('key') as HTMLInputElement;
    setBusy(true);
    setError(undefined);
    try {
      const session = await signIn(field.value);
      field.value = '';
      onSignedIn(session);
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form class="card signin-card" onSubmit={submit} method="post" action="/dashboard/session" aria-labelledby="signin-title">
        <h1 id="signin-title">
          <span class="logo" aria-hidden="true">◆</span> Keyway
        </h1>
        {notice ? (
          <div role="alert">
            <Notice>{notice}</Notice>
          </div>
        ) : null}
        <p class="muted">Sign in with a gateway key. It is sent once to this gateway and never kept in the browser.</p>
        <Field label="Gateway key">
          <input name="key" type="password" autocomplete="off" spellcheck={false} required autoFocus />
        </Field>
        {error ? <ErrorBox error={error} /> : null}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

/**
 * The skip link moves focus to the page's content. The hash is the router's (`#/teams`): following
 * `#main` would make it a route, and the unknown route showed the Overview instead of the page.
 */
function skipToContent(event: Event): void {
  event.preventDefault();
  const main = document.getElementById('main');
  main?.focus();
  main?.scrollIntoView();
}

function Shell({ session, onSignedOut }: { session: Session; onSignedOut(): void }) {
  const [slug, setSlug] = useState(currentSlug());
  const [theme, setTheme] = useState(document.documentElement.dataset.theme ?? 'light');
  useEffect(() => {
    const follow = () => setSlug(currentSlug());
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, []);
  const page = PAGES.find((candidate) => candidate.slug === slug) ?? PAGES[0];
  useEffect(() => {
    document.title = `${page.name} · Keyway`;
    document.getElementById('main')?.focus();
  }, [page]);
  const toggleTheme = () => {
    const next = theme === 'dark' ? 'light' : 'dark';
    applyTheme(next);
    localStorage.setItem('keyway-theme', next);
    setTheme(next);
  };
  const end = async () => {
    await signOut();
    onSignedOut();
  };
  const { Page } = page;
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={skipToContent}>
        Skip to content
      </a>
      <aside class="sidebar">
        <div class="brand">
          <span class="logo" aria-hidden="true">◆</span> Keyway
        </div>
        <nav aria-label="Dashboard">
          <ul>
            {PAGES.map((candidate) => (
              <li>
                <a href={`#/${candidate.slug}`} aria-current={candidate.slug === page.slug ? 'page' : undefined}>
                  {candidate.name}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <div>
            <strong>{session.role}</strong> · {session.account_id}
          </div>
          <div class="muted">key {session.key_id}</div>
          <div class="muted">times in {timezone}</div>
          <div class="who-actions">
            <button type="button" onClick={toggleTheme} aria-label={theme === 'dark' ? 'Use light theme' : 'Use dark theme'}>
              {theme === 'dark' ? 'Light theme' : 'Dark theme'}
            </button>
            <button type="button" onClick={end}>
              Sign out
            </button>
          </div>
        </div>
      </aside>
      <main id="main" tabIndex={-1}>
        <h1>{page.name}</h1>
        <Page session={session} />
      </main>
    </div>
  );
}

const SESSION_ENDED = 'Your session ended; sign in again.';

function Root() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  useEffect(() => {
    loadSession().then((found) => setSession(found ?? null), setError);
    onSessionEnded(() => {
      setSession(null);
      setNotice(SESSION_ENDED);
    });
    return () => onSessionEnded(undefined);
  }, []);
  const signedIn = (next: Session) => {
    setNotice(undefined);
    setSession(next);
  };
  if (error) return <ErrorBox error={error} />;
  if (session === undefined) return <Loading label="Loading the dashboard…" />;
  if (session === null) return <SignIn onSignedIn={signedIn} notice={notice} />;
  return <Shell session={session} onSignedOut={() => setSession(null)} />;
}

applyTheme(localStorage.getItem('keyway-theme') ?? (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
const mount = document.getElementById('app');
if (mount !== null) {
  mount.textContent = '';
  render(<Root />, mount);
}
