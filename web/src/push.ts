import { client, withTimeout } from './api';

/** How long the browser's push service may take to subscribe (none reachable: it never answers). */
export const SUBSCRIBE_TIMEOUT_MS = 15_000;

/** Whether this browser can take Web Push at all. */
export const pushSupported = (): boolean => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

const b64urlToBytes = (s: string): Uint8Array<ArrayBuffer> => {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
};

const bytesToB64url = (buf: ArrayBuffer | null): string => {
  if (!buf) return '';
  let bin = '';
  for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

async function registration(): Promise<ServiceWorkerRegistration> {
  await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  return await navigator.serviceWorker.ready;
}

/** This browser's current subscription, if any. */
export async function currentSubscription(): Promise<PushSubscription | null> {
  if (!pushSupported()) return null;
  const reg = await navigator.serviceWorker.getRegistration('/');
  return (await reg?.pushManager.getSubscription()) ?? null;
}

/** Asks for permission, subscribes with the deployment's VAPID key, and stores the subscription on the server. */
export async function enablePush(): Promise<void> {
  if ((await Notification.requestPermission()) !== 'granted') throw new Error('Notifications are blocked for this site in the browser.');
  const reg = await withTimeout(registration(), 'Registering the service worker');
  const { public_key } = await client.vapidKey();
  const sub = await withTimeout(
    reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64urlToBytes(public_key) }),
    "Subscribing with the browser's push service",
    SUBSCRIBE_TIMEOUT_MS,
  );
  await client.subscribePush({
    endpoint: sub.endpoint,
    auth_key: bytesToB64url(sub.getKey('auth')),
    p256dh_key: bytesToB64url(sub.getKey('p256dh')),
  });
}

/** Removes this browser's subscription, here and on the server. */
export async function disablePush(): Promise<void> {
  const sub = await currentSubscription();
  if (!sub) return;
  await client.unsubscribePush({ endpoint: sub.endpoint });
  await sub.unsubscribe();
}
