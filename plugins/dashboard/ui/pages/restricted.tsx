import type { Session } from '../api.ts';
import { Notice } from '../components.tsx';

/** What a key below the admin role sees instead of an admin page: no action, a plain reason. */
export function AdminOnly({ session, what }: { session: Session; what: string }) {
  return (
    <Notice>
      {what} is for account admins. This key has the <strong>{session.role}</strong> role
      {session.team_id === null ? '' : ` in team ${session.team_id}`}, so the gateway's API does not show it.
    </Notice>
  );
}
