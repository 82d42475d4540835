// The service worker of chatd-edge's web UI: shows the Web Push notification a finished turn sends
// ({title, body, data: {url, chat_id}}), and opens (or focuses) the chat when it is clicked.
self.addEventListener('push', (event) => {
  let payload = {};
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = { title: 'chatd-edge', body: event.data ? event.data.text() : '' };
  }
  const title = typeof payload.title === 'string' ? payload.title : 'chatd-edge';
  const body = typeof payload.body === 'string' ? payload.body : '';
  const data = payload.data && typeof payload.data === 'object' ? payload.data : {};
  event.waitUntil(self.registration.showNotification(title, { body, data, tag: data.chat_id || undefined }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const raw = event.notification.data && event.notification.data.url;
  // Only paths of this origin: a notification never sends the reader elsewhere.
  const url = new URL(typeof raw === 'string' && raw.startsWith('/') ? raw : '/', self.location.origin).href;
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((wins) => {
      for (const w of wins) {
        if (w.url === url && 'focus' in w) return w.focus();
      }
      return self.clients.openWindow(url);
    }),
  );
});
