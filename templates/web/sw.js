// The verify page as an offline web app: this service worker keeps the page, its scripts,
// style and fonts, the trust roots and the issuer's signed trust list and status list, so a
// verifier who opened the page once can check a seal with no network. Network first (a fresh
// status list when there is one), the saved copy when the network fails. It serves nothing it
// did not fetch from this origin, and never caches the verify API's answers.

const SHELL = "pramaan-verify-v1";
const FILES = [
  "/v", "/v/roots.json", "/v/manifest.webmanifest",
  "/v/assets/verify.css", "/v/assets/verify.js", "/v/assets/seal.js", "/v/assets/der.js",
  "/v/assets/published.js", "/v/assets/camera.js", "/v/assets/icon.svg",
  "/v/fonts/NotoSans-Regular.ttf", "/v/fonts/NotoSans-Bold.ttf",
  "/v/fonts/NotoSansDevanagari-Regular.ttf", "/v/fonts/NotoSansDevanagari-Bold.ttf",
  "/.well-known/pramaan/trust-list.json", "/.well-known/pramaan/status-list.json",
];
// The camera's decoder, when `make` fetched it: kept if there, never a reason not to install.
const OPTIONAL = ["/v/vendor/zxing-reader.js", "/v/vendor/zxing_reader.wasm"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL)
    .then((cache) => cache.addAll(FILES).then(() => Promise.all(
      OPTIONAL.map((file) => cache.add(file).catch(() => {})))))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith("pramaan-verify-") && n !== SHELL)
      .map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin ||
      !(FILES.includes(url.pathname) || OPTIONAL.includes(url.pathname))) {
    return;  // the browser's own handling: the verify API is never answered from a cache
  }
  event.respondWith((async () => {
    const cache = await caches.open(SHELL);
    try {
      const answer = await fetch(event.request);
      if (answer.ok) await cache.put(url.pathname, answer.clone());
      return answer;
    } catch (error) {
      const saved = await cache.match(url.pathname);
      if (saved) return saved;
      throw error;
    }
  })());
});
