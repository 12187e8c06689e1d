/* OneEye pages: shared helpers (CSRF token, JSON API calls, DOM building, local times).
   Login and logout are plain forms and work without this script.
   Plain JavaScript, no build step. */
"use strict";

window.OneEye = (function () {
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /* Call the JSON API; resolves to the parsed body, rejects with an Error whose message is the
     API's human sentence. `body` may be a plain object (sent as JSON) or FormData. */
  async function api(method, url, body) {
    const headers = { "X-CSRF-Token": csrfToken(), Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new Error("the server cannot be reached; check the connection and try again");
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (err) { data = null; }
    }
    if (!response.ok) {
      const message = data && data.error && data.error.message
        ? data.error.message
        : "the server answered " + response.status;
      const error = new Error(message);
      error.status = response.status;
      error.fields = data && data.error ? data.error.fields : undefined;
      throw error;
    }
    return data;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([name, value]) {
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : String(value));
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    });
    return node;
  }

  function localTime(iso) {
    const when = new Date(iso);
    if (isNaN(when.getTime())) return iso ? String(iso).slice(11, 19) : "";
    return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function localDateTime(iso) {
    const when = new Date(iso);
    if (isNaN(when.getTime())) return iso ? String(iso).slice(0, 16).replace("T", " ") : "";
    return when.toLocaleString([], { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  /* The /ws WebSocket from event `since` on: each frame newer than the last one seen goes to
     onFrame (once, even across reconnects); onState hears "live" / "reconnecting". A dropped
     connection comes back with backoff from the last event seen; an ended session goes to the
     login page. Returns { lastId(), socket() }. */
  function live(since, onFrame, onState) {
    let lastId = since || 0;
    let delay = 1000;
    let socket = null;
    function connect() {
      const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + window.location.host + "/ws?since=" + lastId);
      socket.addEventListener("open", function () {
        delay = 1000;
        if (onState) onState("live");
      });
      socket.addEventListener("message", function (message) {
        let frame;
        try { frame = JSON.parse(message.data); } catch (err) { return; }
        if (typeof frame.id === "number") {
          if (frame.id <= lastId) return;
          lastId = frame.id;
        }
        onFrame(frame);
      });
      socket.addEventListener("close", function (event) {
        if (event.code === 4401) {
          window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
          return;
        }
        if (onState) onState("reconnecting");
        const wait = delay + Math.random() * 500;
        delay = Math.min(delay * 2, 15000);
        window.setTimeout(connect, wait);
      });
    }
    connect();
    return { lastId: function () { return lastId; }, socket: function () { return socket; } };
  }

  /* A case's match in words, as the server says it (pages.sighting_label): "seen at Lobby", or
     for one found in earlier footage "seen at Lobby, 20 minutes before the case was filed".
     `filedAt` (a Date) when known; else the event's minutes_ago (found - seen) is used. */
  function span(minutes) {
    if (minutes < 1) return "less than a minute";
    if (minutes === 1) return "1 minute";
    if (minutes < 120) return minutes + " minutes";
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    return rest ? hours + " h " + rest + " min" : hours + " hours";
  }

  function sightingLabel(d, filedAt) {
    const camera = d.camera_name || d.camera_id || "a camera";
    if (d.kind !== "retro") return "seen at " + camera;
    let before = filedAt ? Math.floor((filedAt - new Date(d.seen_at)) / 60000) : NaN;
    if (isNaN(before)) before = typeof d.minutes_ago === "number" ? d.minutes_ago : 0;
    return "seen at " + camera + ", " + span(Math.max(0, before)) + " before the case was filed";
  }

  function localizeTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (node) {
      const iso = node.getAttribute("datetime");
      if (iso) {
        /* class "datetime": a day may lie between then and now, so the date is shown too. */
        node.textContent = node.classList.contains("datetime") ? localDateTime(iso) : localTime(iso);
        node.title = new Date(iso).toLocaleString();
      }
    });
  }

  /* Which cameras are looking (the "camera-watch" box of the dashboard and the case page, as
     the server's camera_watch macro says it), kept current from a camera.status event's data. */
  function cameraWatch(d) {
    const box = document.querySelector('[data-testid="camera-watch"]');
    if (!box || !d || !d.camera_id) return;
    let cameras = [];
    try { cameras = JSON.parse(box.dataset.cameras || "[]"); } catch (err) { cameras = []; }
    const known = cameras.find(function (c) { return c.id === d.camera_id; });
    if (d.removed) cameras = cameras.filter(function (c) { return c.id !== d.camera_id; });
    else if (known) { known.state = d.state || "offline"; if (d.name) known.name = d.name; }
    else cameras.push({ id: d.camera_id, name: d.name || d.camera_id, state: d.state || "offline", edge: null });
    cameras.sort(function (a, b) { return a.name < b.name ? -1 : a.name > b.name ? 1 : (a.id < b.id ? -1 : 1); });
    box.dataset.cameras = JSON.stringify(cameras);
    const running = cameras.filter(function (c) { return c.state === "online"; });
    const stopped = cameras.filter(function (c) { return c.state !== "online"; });
    const names = function (list, withState) {
      return list.map(function (c) { return c.name + (withState ? " (" + c.state + ")" : ""); }).join(", ");
    };
    let line;
    if (running.length) {
      const n = running.length;
      line = el("p", { class: "watch-ok", "data-testid": "cameras-running" }, [
        el("strong", { text: n + " camera" + (n === 1 ? " is" : "s are") + " looking" }),
        ": " + names(running, false) + ".",
        stopped.length ? " Not running: " + names(stopped, true) + "." : null,
      ]);
    } else {
      line = el("p", { class: "watch-none", role: "alert", "data-testid": "no-camera-running" }, [
        el("strong", { text: "No camera is running" }),
        ": nobody is being looked for" + (stopped.length
          ? " (" + stopped.map(function (c) { return c.name + ": " + c.state; }).join(", ") + ")."
          : "; no camera is set up."),
        box.dataset.admin === "yes" ? " " : null,
        box.dataset.admin === "yes" ? el("a", { href: "/admin/cameras", text: "Open the cameras" }) : null,
        box.dataset.admin === "yes" ? "." : null,
      ]);
    }
    box.replaceChildren(line);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
  });

  return {
    api: api, csrfToken: csrfToken, el: el, live: live, sightingLabel: sightingLabel,
    localTime: localTime, localDateTime: localDateTime, localizeTimes: localizeTimes,
    cameraWatch: cameraWatch,
  };
})();
