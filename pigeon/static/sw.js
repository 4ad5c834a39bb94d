/* Pigeon's service worker: the app shell offline, and Web Push.

   Served at /sw.js (scope: the whole site) with the cache's version filled in, so that any
   change to the static files installs a new worker, whose activation drops the old caches.

   What it keeps: the offline page and the static files it names (installed up front), and
   static files as they are fetched (their URLs carry a version). What it never keeps: pages
   and API answers, which hold people's messages. A page load goes to the network first; only
   when the network fails does the offline page stand in.

   A push names a conversation and nothing else; the worker asks the API (with the session
   cookie) who wrote, and shows "New message from NAME", or "New message" if it cannot ask.
   One notification per conversation (its tag): a newer one replaces it. */
"use strict";

var VERSION = "__VERSION__";
var CACHE = "pigeon-" + VERSION;
var OFFLINE = "/offline";

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(CACHE).then(function (cache) {
      return fetch(OFFLINE, { credentials: "omit", cache: "no-store" }).then(function (r) {
        if (!r.ok) throw new Error("offline page: HTTP " + r.status);
        return r.clone().text().then(function (html) {
          var assets = [];
          html.replace(/(?:href|src)="(\/static\/[^"]+)"/g, function (_, url) { assets.push(url); return _; });
          return Promise.all([cache.put(OFFLINE, r), cache.addAll(assets)]);
        });
      });
    }).then(function () { return self.skipWaiting(); })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (n) { return n.indexOf("pigeon-") === 0 && n !== CACHE; })
        .map(function (n) { return caches.delete(n); }));
    }).then(function () { return self.clients.claim(); })
  );
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(function () {
      return caches.match(OFFLINE).then(function (page) {
        return page || new Response("You are offline.", { status: 503, headers: { "Content-Type": "text/plain" } });
      });
    }));
    return;
  }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.open(CACHE).then(function (cache) {
      return cache.match(request).then(function (hit) {
        return hit || fetch(request).then(function (r) {
          if (r.ok) cache.put(request, r.clone());
          return r;
        });
      });
    }));
  }
  /* everything else (the API, media, pages' fragments) goes to the network untouched */
});

function whoWrote(conversationId) {
  return fetch("/api/v1/conversations/" + conversationId, { credentials: "same-origin", headers: { "Accept": "application/json" } })
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function (c) {
      var last = c.last_message, name = "";
      (c.participants || []).forEach(function (p) { if (last && p.id === last.sender_id) name = p.display_name; });
      return { title: name ? "New message from " + name : "New message", body: c.kind === "group" && c.title ? c.title : "" };
    });
}

self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = {}; }
  var id = Number(data.conversation_id) || 0;
  var shown = (id ? whoWrote(id) : Promise.reject(new Error("no conversation")))
    .catch(function () { return { title: "New message", body: "" }; })
    .then(function (text) {
      return self.registration.showNotification(text.title, {
        body: text.body,
        tag: id ? "conversation-" + id : "pigeon",
        renotify: true,
        icon: "/static/icons/icon-192.png",
        badge: "/static/icons/icon-192.png",
        data: { url: id ? "/messages/" + id + "#latest" : "/messages" }
      });
    });
  event.waitUntil(shown);
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var target = (event.notification.data && event.notification.data.url) || "/messages";
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (wins) {
    for (var i = 0; i < wins.length; i++) {
      if (new URL(wins[i].url).origin === self.location.origin && "focus" in wins[i]) {
        return wins[i].focus().then(function (w) { return w && "navigate" in w ? w.navigate(target) : w; });
      }
    }
    return self.clients.openWindow(target);
  }));
});
