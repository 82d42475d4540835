import { type SyntheticEvent } from 'react';
import { client } from '../api';
import { ErrorLine } from './ErrorLine';
import { useAdminList } from './useAdminList';
import { field } from '../form';

const listUsers = () => client.listUsers({ limit: 200 });

/** Users: add one, make owner or member, suspend. */
export function Users({ currentUserId }: { currentUserId: string }) {
  const { items, error, act } = useAdminList(listUsers);
  const add = (e: SyntheticEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    void act(() =>
      client.createUser({
        email: field(f, 'email'),
        username: field(f, 'username'),
        password: field(f, 'password'),
        roles: f.get('owner') === 'on' ? ['owner'] : ['member'],
      }),
    ).then((ok) => {
      if (ok) form.reset();
    });
  };
  return (
    <section aria-labelledby="users-heading">
      <h2 id="users-heading">Users</h2>
      <ErrorLine error={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Role</th>
            <th scope="col">Suspended</th>
          </tr>
        </thead>
        <tbody>
          {items?.map((u) => {
            const owner = u.roles.includes('owner');
            const self = u.id === currentUserId;
            return (
              <tr key={u.id}>
                <td>
                  {u.username} <span className="muted">{u.email}</span>
                </td>
                <td>
                  <button
                    type="button"
                    className="small"
                    disabled={self}
                    onClick={() => void act(() => client.updateUser(u.id, { roles: owner ? ['member'] : ['owner'] }))}
                    aria-label={`${owner ? 'Make member' : 'Make owner'}: ${u.username}`}
                  >
                    {owner ? 'owner → member' : 'member → owner'}
                  </button>
                </td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Suspend ${u.username}`}
                    disabled={self}
                    checked={u.suspended}
                    onChange={(e) => void act(() => client.updateUser(u.id, { suspended: e.target.checked }))}
                  />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <form onSubmit={add} className="card">
        <h3>Add a user</h3>
        <label>
          Email
          <input name="email" type="email" required />
        </label>
        <label>
          Username
          <input name="username" required />
        </label>
        <label>
          Password
          <input name="password" type="password" minLength={8} autoComplete="new-password" required />
        </label>
        <label className="toggle">
          <input name="owner" type="checkbox" /> Owner
        </label>
        <button type="submit">Add user</button>
      </form>
    </section>
  );
}
