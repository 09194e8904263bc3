// Vigil's service worker: shows the push notifications Vigil sends (src/notify/channels/webpush)
// and opens the alert in the dashboard when one is clicked.
self.addEventListener('push', (event) => {
  let data = { title: 'Vigil', body: 'New alert', url: '/#/alerts' };
  try {
    data = { ...data, ...event.data.json() };
  } catch {
    // a payload that is not JSON still deserves a notification
  }
  event.waitUntil(
    self.registration.showNotification(data.title, {
      body: data.body,
      tag: data.alertId,
      renotify: Boolean(data.alertId),
      requireInteraction: data.severity === 'critical',
      data: { url: data.url },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = new URL(event.notification.data?.url ?? '/#/alerts', self.location.origin).href;
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => new URL(w.url).origin === self.location.origin);
      return open ? open.navigate(url).then((w) => w?.focus()) : self.clients.openWindow(url);
    }),
  );
});
