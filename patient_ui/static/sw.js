"use strict";
/* The companion app's service worker: keeps the shell (the page, its script, styles, icons and manifest, which
   hold no patient data) so that the app opens without a network. The shell is fetched from the network first, so
   a new version arrives as soon as the phone is online, and from the cache only when the network fails. The API
   is never cached here: the page keeps what it last loaded, and the readings recorded offline wait in IndexedDB. */
const CACHE = "telemon-app-v1";
const SHELL = [
  "/app",
  "/app/manifest.webmanifest",
  "/app/static/app.css",
  "/app/static/store.js",
  "/app/static/app.js",
  "/app/static/icon.svg",
  "/app/static/icon-192.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

function isShell(url) {
  return url.origin === self.location.origin &&
    (url.pathname === "/app" || url.pathname === "/app/manifest.webmanifest" || url.pathname.startsWith("/app/static/"));
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !isShell(url)) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
        }
        return response;
      })
      .catch(() => caches.match(url.pathname).then((cached) => cached || Response.error())),
  );
});
