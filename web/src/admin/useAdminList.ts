import { useCallback, useEffect, useState } from 'react';
import { errorText } from '../api';

/** A list an admin screen shows, its reload, and one place for the server's error messages. */
export function useAdminList<T>(fetcher: () => Promise<T[]>) {
  const [items, setItems] = useState<T[] | null>(null);
  const [error, setError] = useState('');
  const reload = useCallback(async () => {
    try {
      setItems(await fetcher());
    } catch (e) {
      setError(errorText(e));
    }
  }, [fetcher]);
  useEffect(() => {
    void reload();
  }, [reload]);
  /** Runs an action, shows its error, reloads the list. */
  const act = useCallback(
    async (what: () => Promise<unknown>): Promise<boolean> => {
      setError('');
      try {
        await what();
        await reload();
        return true;
      } catch (e) {
        setError(errorText(e));
        return false;
      }
    },
    [reload],
  );
  return { items, error, act };
}
