import { type SyntheticEvent } from 'react';
import { client } from '../api';
import { useConfirm } from '../components/Confirm';
import { ErrorLine } from './ErrorLine';
import { useAdminList } from './useAdminList';
import { field } from '../form';

const listUsers = () => client.listUsers({ limit: 200 });

/** Users: add one, make owner or member, suspend. */
export function Users({ currentUserId }: { currentUserId: string }) {
  const { items, error, act } = useAdminList(listUsers);
  const { ask, dialog } = useConfirm();
  const changeRole = async (username: string, id: string, owner: boolean) => {
    const body = owner ? <p>{username} can no longer configure the deployment.</p> : <p>{username} can then configure the whole deployment, and its users.</p>;
    if (await ask(owner ? `Make ${username} a member?` : `Make ${username} an owner?`, body, owner ? 'Make member' : 'Make owner')) {
      await act(() => client.updateUser(id, { roles: owner ? ['member'] : ['owner'] }));
    }
  };
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
      {dialog}
      <div className="table-wrap">
      <table className="users">
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
                  {u.username} <span className="muted email">{u.email}</span>
                </td>
                <td>
                  <span className="role">{owner ? 'Owner' : 'Member'}</span>{' '}
                  <button
                    type="button"
                    className="small"
                    disabled={self}
                    onClick={() => void changeRole(u.username, u.id, owner)}
                    aria-label={`${owner ? 'Make member' : 'Make owner'}: ${u.username}`}
                  >
                    {owner ? 'Make member' : 'Make owner'}
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
      </div>
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
        <label className="toggle spaced">
          <input name="owner" type="checkbox" /> Owner (can configure the deployment)
        </label>
        <div>
          <button type="submit">Add user</button>
        </div>
      </form>
    </section>
  );
}
