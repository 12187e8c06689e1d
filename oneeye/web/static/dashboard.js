/* The live dashboard: arrival cards and camera tiles, kept current over the /ws WebSocket.
   The server renders the first content; this client resumes from the newest event id the page
   was rendered with, and after a dropped connection it reconnects (with backoff) from the last
   event it saw, so nothing is missed and nothing is shown twice. */
"use strict";

(function () {
  const { api, el, localTime } = window.OneEye;
  const WITHDRAWN = "sighting.withdrawn"; /* a rejected match: its card goes */
  const ARRIVALS = new Set(["sighting", "customer.arrived", "sighting_update", "sighting.update", "left", "sighting.left", "sighting.revised"]);
  const LIVE_AT_START = 4; /* browsers allow ~6 connections per host; keep room for the API */
  const MISSING_WATCHLIST = "amber-alert"; /* the Amber Alert watchlist (services.alerts) */
  const OLDER_PAGE = 100; /* events per page of /api/v1/arrivals (the server allows up to 200) */

  const root = document.getElementById("dashboard");
  if (!root) return;
  const cardsBox = document.getElementById("cards");
  const camerasBox = document.getElementById("cameras") || root.querySelector('[data-testid="cameras"]');
  const statusBadge = document.querySelector('[data-testid="ws-status"]');
  const canSeeAccounts = root.dataset.canSeeAccounts === "true";
  const maxCards = parseInt(root.dataset.maxCards || "60", 10);
  let lastId = parseInt(root.dataset.lastEventId || "0", 10) || 0;
  const visits = new Map(); /* sighting id -> merged event data */
  const withdrawn = new Set(); /* sighting ids whose match was rejected: never shown again */
  const judge = root.dataset.judge || ""; /* "coordinator", "teller" (customers' cards) or "" */

  const initial = document.getElementById("initial-cards");
  if (initial) {
    try {
      JSON.parse(initial.textContent).forEach(function (card) { visits.set(card.sighting_id, card); });
    } catch (err) { /* the server-rendered cards still show */ }
  }

  function money(balance, currency) {
    if (balance === null || balance === undefined || balance === "") return "—";
    const text = String(balance === null || balance === undefined ? "" : balance).trim();
    const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
    if (!match) return (text + " " + (currency || "")).trim();
    const whole = match[2].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const cents = ((match[3] || "") + "00").slice(0, 2);
    return (match[1] + whole + "." + cents + " " + (currency || "")).trim();
  }

  function setStatus(state, text) {
    if (!statusBadge) return;
    statusBadge.dataset.state = state;
    statusBadge.textContent = text;
  }

  /* A photo that cannot be shown (deleted, or not allowed) leaves a plain grey square. */
  function watchImages(node) {
    node.querySelectorAll(".card-photos img").forEach(function (img) {
      if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) img.classList.add("broken");
      img.addEventListener("error", function () { img.classList.add("broken"); });
    });
  }

  /* Cards ------------------------------------------------------------------------------------ */

  function buildCard(v) {
    const account = canSeeAccounts && v.account ? v.account : null;
    const photos = el("div", { class: "card-photos" }, [
      account && account.profile_photo_url
        ? el("img", { class: "profile", "data-testid": "card-profile-photo", src: account.profile_photo_url, alt: "Profile photo" })
        : null,
      v.snapshot_url
        ? el("img", { class: "snapshot", "data-testid": "card-snapshot", src: v.snapshot_url, alt: "Snapshot from the camera" })
        : null,
    ]);
    const name = (account && account.name) || v.person_name || "Unknown face";
    const missing = Boolean(v.person_id) && v.watchlist === MISSING_WATCHLIST;
    const body = el("div", { class: "card-body" }, [
      missing ? el("p", { class: "card-kind", "data-testid": "card-kind", text: "Missing person" }) : null,
      el("h3", { class: "name", "data-testid": "card-name", text: name }),
      account
        ? el("dl", { class: "account", "data-testid": "card-account" }, [
            el("div", {}, [el("dt", { text: "Account" }), el("dd", { "data-testid": "card-account-type", text: account.account_type || "—" })]),
            el("div", {}, [el("dt", { text: "Balance" }), el("dd", { "data-testid": "card-balance", text: money(account.balance, account.currency) })]),
            el("div", { class: "wide" }, [el("dt", { text: "Address" }), el("dd", { "data-testid": "card-address", text: account.address || "—" })]),
          ])
        : null,
      account && v.account_error
        ? el("p", { class: "card-error", "data-testid": "card-account-error", text: v.account_error })
        : null,
      v.revised_from
        ? el("p", { class: "card-revised", "data-testid": "card-revised", text: (v.person_id ? "Revised" : "Withdrawn") + ": first shown as " + v.revised_from })
        : null,
      el("p", { class: "meta" }, [
        el("span", { "data-testid": "card-camera", text: v.camera_name || v.camera_id || "" }),
        " · ",
        el("time", { "data-testid": "card-time", datetime: v.seen_at || "", text: localTime(v.seen_at) }),
      ]),
      v.person_id && (judge === "coordinator" || (judge === "teller" && v.account))
        ? el("p", { class: "card-actions", "data-testid": "card-actions" }, v.confirmed
          ? [el("span", { "data-testid": "card-confirmed", text: "Confirmed" }), " ",
             el("button", { type: "button", class: "small", "data-action": "enrol", "data-testid": "card-enrol", text: "Add this face to their photos" })]
          : [el("button", { type: "button", class: "small", "data-action": "confirm", "data-testid": "card-confirm", text: "It is them" }), " ",
             el("button", { type: "button", class: "small danger", "data-action": "reject", "data-testid": "card-reject", text: "Not them" })])
        : null,
      el("p", { class: "card-result", role: "status", "data-testid": "card-result" }),
    ]);
    const classes = ["card"];
    if (!v.person_id) classes.push("unknown");
    if (account) classes.push("customer");
    if (missing) classes.push("missing");
    if (v.left) classes.push("left");
    if (v.revised_from) classes.push("revised");
    return el("article", {
      class: classes.join(" "),
      "data-testid": "arrival-card",
      "data-sighting-id": v.sighting_id,
      "data-event-id": v.event_id,
      "data-seen-at": v.seen_at || "",
      "data-watchlist": v.watchlist || "",
    }, [photos, body]);
  }

  /* Take one frame of a visit into `merged` (its data so far); false when the frame is stale. */
  function mergeFrame(merged, frame) {
    const data = frame.data || {};
    if (frame.type === "sighting.revised") {
      /* A revised decision: the card says who it is now (perhaps nobody known) and drops the
         earlier person's account; the new person's card, if any, comes as its own event. */
      ["person_id", "person_name", "watchlist", "distance"].forEach(function (key) { merged[key] = data[key]; });
      delete merged.account;
      delete merged.account_error;
      if (!merged.revised_from) merged.revised_from = (data.previous && data.previous.person_name) || "an unknown face";
    } else if (merged.revised_from && data.person_id !== undefined && data.person_id !== merged.person_id) {
      return false; /* about a decision since revised (a card looked up late): stale */
    } else {
      Object.entries(data).forEach(function ([key, value]) {
        if (value !== null && value !== undefined && value !== "") merged[key] = value;
      });
    }
    if (frame.type === "left" || frame.type === "sighting.left") merged.left = true;
    return true;
  }

  function withdrawCard(id) {
    withdrawn.add(id);
    visits.delete(id);
    const card = cardsBox.querySelector('[data-sighting-id="' + CSS.escape(id) + '"]');
    if (card) card.remove();
    regroup();
    const empty = document.querySelector('[data-testid="no-arrivals"]');
    if (empty && !cardsBox.querySelector('[data-testid="arrival-card"]')) empty.hidden = false;
  }

  function rebuild(id) {
    const existing = cardsBox.querySelector('[data-sighting-id="' + CSS.escape(id) + '"]');
    if (!existing || !visits.get(id)) return;
    const card = buildCard(visits.get(id));
    watchImages(card);
    existing.replaceWith(card);
  }

  /* "It is them" / "Not them" / "Add this face": the API checks the role again. */
  async function onCardAction(button) {
    const card = button.closest('[data-testid="arrival-card"]');
    const id = card && card.dataset.sightingId;
    if (!id) return;
    const result = card.querySelector('[data-testid="card-result"]');
    const url = "/api/v1/sightings/" + encodeURIComponent(id);
    button.disabled = true;
    try {
      if (button.dataset.action === "enrol") {
        await api("POST", url + "/enrol", {});
        if (result) result.textContent = "Face added to their photos";
        button.remove();
        return;
      }
      await api("POST", url + "/verdict", { verdict: button.dataset.action });
      if (button.dataset.action === "reject") {
        withdrawCard(id);
      } else {
        const v = visits.get(id) || {};
        v.confirmed = true;
        visits.set(id, v);
        rebuild(id);
      }
    } catch (err) {
      button.disabled = false;
      if (result) result.textContent = err.message;
    }
  }

  function upsertCard(frame) {
    const data = frame.data || {};
    const id = data.sighting_id || data.id;
    if (!id || withdrawn.has(id)) return;
    const merged = Object.assign({}, visits.get(id) || {});
    if (!mergeFrame(merged, frame)) return;
    if (visits.get(id) && visits.get(id).seen_at) merged.seen_at = visits.get(id).seen_at;
    merged.sighting_id = id;
    merged.event_id = frame.id;
    visits.set(id, merged);
    const card = buildCard(merged);
    watchImages(card);
    const existing = cardsBox.querySelector('[data-sighting-id="' + CSS.escape(id) + '"]');
    if (existing) {
      existing.replaceWith(card);
    } else {
      place(card);
      card.classList.add("fresh");
      /* Bounded, unless the user asked for older cards (they stay until a reload). */
      if (!loadedOlder) {
        let shown = cardsBox.querySelectorAll('[data-testid="arrival-card"]');
        for (let i = shown.length - 1; i >= maxCards; i--) {
          visits.delete(shown[i].dataset.sightingId);
          shown[i].remove();
        }
      }
    }
    regroup();
    const empty = document.querySelector('[data-testid="no-arrivals"]');
    if (empty) empty.hidden = true;
  }

  /* Time order and days ------------------------------------------------------------------------ */

  /* Newest first: by the time the visit began, then by event id. */
  function newer(a, b) {
    const ta = Date.parse(a.dataset.seenAt || "") || 0;
    const tb = Date.parse(b.dataset.seenAt || "") || 0;
    if (ta !== tb) return ta > tb;
    return parseInt(a.dataset.eventId || "0", 10) > parseInt(b.dataset.eventId || "0", 10);
  }

  function place(card) {
    const shown = cardsBox.querySelectorAll('[data-testid="arrival-card"]');
    for (const other of shown) {
      if (other !== card && newer(card, other)) { other.before(card); return; }
    }
    cardsBox.append(card);
  }

  function dayKey(when) {
    return when.getFullYear() + "-" + String(when.getMonth() + 1).padStart(2, "0") + "-" + String(when.getDate()).padStart(2, "0");
  }

  /* "Today", "Yesterday" or the date, in this browser's time zone. */
  function dayLabel(when) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (dayKey(when) === dayKey(today)) return "Today";
    if (dayKey(when) === dayKey(yesterday)) return "Yesterday";
    return when.toLocaleDateString([], { weekday: "long", day: "numeric", month: "long", year: "numeric" });
  }

  /* One heading before the first card of each day (the server drew them in UTC). */
  function regroup() {
    cardsBox.querySelectorAll('[data-testid="day-heading"]').forEach(function (h) { h.remove(); });
    let last = null;
    cardsBox.querySelectorAll('[data-testid="arrival-card"]').forEach(function (card) {
      const when = new Date(card.dataset.seenAt || "");
      const key = isNaN(when.getTime()) ? "" : dayKey(when);
      if (key === last) return;
      last = key;
      card.before(el("h3", { class: "day", "data-testid": "day-heading", "data-day": key, text: key ? dayLabel(when) : "Time unknown" }));
    });
  }

  /* Older arrivals, a page at a time (/api/v1/arrivals), when the list's end scrolls into view
     or the button is pressed. A page's events are merged as live frames are, except that what
     a card shows already (newer) is kept. */
  let loadedOlder = false;
  const olderBox = document.querySelector('[data-testid="older"]');
  const olderButton = document.querySelector('[data-testid="load-older"]');
  const olderResult = document.querySelector('[data-testid="older-result"]');
  let loadingOlder = false;

  function mergeOlder(events) {
    const merged = new Map();
    events.slice().reverse().forEach(function (frame) { /* oldest first: later events win */
      if (!ARRIVALS.has(frame.type)) return;
      const data = frame.data || {};
      const id = data.sighting_id || data.id;
      if (!id) return;
      const visit = merged.get(id) || { sighting_id: id, event_id: frame.id };
      const seenAt = visit.seen_at;
      if (!mergeFrame(visit, frame)) return;
      if (seenAt) visit.seen_at = seenAt;
      visit.event_id = Math.max(visit.event_id, frame.id);
      merged.set(id, visit);
    });
    merged.forEach(function (older, id) {
      const known = visits.get(id);
      const visit = Object.assign({}, older);
      if (known) {
        /* What the card shows came later: it wins, and a revision it shows stands. */
        Object.entries(known).forEach(function ([key, value]) {
          if (value !== null && value !== undefined && value !== "" && key !== "seen_at") visit[key] = value;
        });
        if (known.revised_from) {
          ["person_id", "person_name", "watchlist", "distance", "account", "account_error"].forEach(function (key) { visit[key] = known[key]; });
        }
        visit.event_id = Math.max(older.event_id, known.event_id || 0);
      }
      visits.set(id, visit);
      const card = buildCard(visit);
      watchImages(card);
      const existing = cardsBox.querySelector('[data-sighting-id="' + CSS.escape(id) + '"]');
      if (existing) existing.remove();
      place(card);
    });
    regroup();
  }

  async function loadOlder() {
    if (!olderButton || loadingOlder || !olderButton.dataset.before) return;
    loadingOlder = true;
    olderButton.disabled = true;
    if (olderResult) olderResult.textContent = "loading…";
    try {
      const page = await api("GET", "/api/v1/arrivals?limit=" + OLDER_PAGE + "&before=" + encodeURIComponent(olderButton.dataset.before));
      loadedOlder = true;
      mergeOlder(page.events || []);
      if (olderResult) olderResult.textContent = "";
      if (page.before) {
        olderButton.dataset.before = String(page.before);
      } else {
        olderButton.dataset.before = "";
        if (olderBox) olderBox.hidden = true;
        const none = document.querySelector('[data-testid="no-older"]');
        if (none) none.hidden = false;
      }
    } catch (err) {
      if (olderResult) olderResult.textContent = "Could not load older arrivals: " + (err.message || err);
    } finally {
      olderButton.disabled = false;
      loadingOlder = false;
    }
  }

  if (olderButton) {
    olderButton.addEventListener("click", loadOlder);
    if ("IntersectionObserver" in window) {
      new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) loadOlder();
      }, { rootMargin: "200px" }).observe(olderButton);
    }
  }

  /* Cameras ---------------------------------------------------------------------------------- */

  function startLive(tile, fresh) {
    const img = tile.querySelector('[data-testid="camera-live"]');
    const button = tile.querySelector('[data-testid="camera-live-toggle"]');
    if (!img) return;
    img.src = img.dataset.src + (fresh ? "?t=" + Date.now() : "");
    tile.classList.add("streaming");
    if (button) button.textContent = "Stop live view";
  }

  function stopLive(tile) {
    const img = tile.querySelector('[data-testid="camera-live"]');
    const button = tile.querySelector('[data-testid="camera-live-toggle"]');
    if (img) img.removeAttribute("src");
    tile.classList.remove("streaming");
    if (button) button.textContent = "Live view";
  }

  function wireTile(tile) {
    const button = tile.querySelector('[data-testid="camera-live-toggle"]');
    if (button) {
      button.addEventListener("click", function () {
        if (tile.classList.contains("streaming")) stopLive(tile);
        else startLive(tile, true);
      });
    }
  }

  function buildTile(d) {
    const tile = el("article", { class: "camera", "data-testid": "camera-tile", "data-camera-id": d.camera_id }, [
      el("header", {}, [
        el("h3", { "data-testid": "camera-name", text: d.name || d.camera_id }),
        el("span", { class: "status", "data-testid": "camera-status" }),
        el("span", { class: "fps", "data-testid": "camera-fps" }),
        el("span", { class: "dropped", "data-testid": "camera-dropped", hidden: true }),
      ]),
      el("div", { class: "live" }, [
        el("img", { "data-testid": "camera-live", "data-src": "/api/v1/cameras/" + encodeURIComponent(d.camera_id) + "/stream", alt: "Live view of " + (d.name || d.camera_id) }),
        el("button", { type: "button", class: "live-toggle", "data-testid": "camera-live-toggle", text: "Live view" }),
      ]),
      el("p", { class: "camera-error", "data-testid": "camera-error", hidden: true }),
    ]);
    wireTile(tile);
    return tile;
  }

  function updateCamera(d) {
    if (!camerasBox || !d.camera_id) return;
    let tile = camerasBox.querySelector('[data-testid="camera-tile"][data-camera-id="' + CSS.escape(d.camera_id) + '"]');
    if (d.removed) {
      if (tile) {
        stopLive(tile);
        (tile.closest('[data-testid="camera-row"]') || tile).remove();
      }
      return;
    }
    if (!tile) {
      if (!root.classList.contains("dashboard")) return; /* admin page: rows are server-rendered */
      tile = buildTile(d);
      camerasBox.append(tile);
      if (camerasBox.querySelectorAll(".camera.streaming").length < LIVE_AT_START) startLive(tile, true);
      const empty = document.querySelector('[data-testid="no-cameras"]');
      if (empty) empty.hidden = true;
    }
    const badge = tile.querySelector('[data-testid="camera-status"]');
    const before = badge.textContent;
    badge.textContent = d.state || "offline";
    badge.className = "status state-" + (d.state || "offline");
    const fps = tile.querySelector('[data-testid="camera-fps"]');
    fps.textContent = typeof d.fps === "number" && d.state === "online" ? d.fps.toFixed(1) + " fps" : "";
    const dropped = tile.querySelector('[data-testid="camera-dropped"]');
    if (dropped && typeof d.dropped === "number") {
      dropped.textContent = d.dropped + " dropped";
      dropped.hidden = d.dropped === 0;
    }
    const error = tile.querySelector('[data-testid="camera-error"]');
    error.textContent = d.error || "";
    error.hidden = !d.error;
    if (d.name) tile.querySelector('[data-testid="camera-name"]').textContent = d.name;
    /* A stream that ended while the camera was down starts again when it is back. */
    if (d.state === "online" && before !== "online" && tile.classList.contains("streaming")) startLive(tile, true);
  }

  /* The WebSocket ---------------------------------------------------------------------------- */

  let delay = 1000;
  let socket = null;

  function handle(frame) {
    if (typeof frame.id === "number") {
      if (frame.id <= lastId) return; /* already shown (replayed after a reconnect) */
      lastId = frame.id;
    }
    if (ARRIVALS.has(frame.type) && cardsBox) upsertCard(frame);
    else if (frame.type === WITHDRAWN && cardsBox) withdrawCard((frame.data || {}).sighting_id || "");
    else if (frame.type === "camera.status") {
      updateCamera(frame.data || {});
      window.OneEye.cameraWatch(frame.data || {});
    }
    /* Other parts of the page (the Amber Alert banner) take the frames they want from here. */
    document.dispatchEvent(new CustomEvent("oneeye:frame", { detail: frame }));
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws?since=" + lastId);
    socket.addEventListener("open", function () {
      delay = 1000;
      setStatus("live", "live");
    });
    socket.addEventListener("message", function (message) {
      let frame;
      try { frame = JSON.parse(message.data); } catch (err) { return; }
      handle(frame);
    });
    socket.addEventListener("close", function (event) {
      if (event.code === 4401) {
        window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
        return;
      }
      setStatus("reconnecting", "reconnecting…");
      const wait = delay + Math.random() * 500;
      delay = Math.min(delay * 2, 15000);
      window.setTimeout(connect, wait);
    });
  }

  /* Tellers may hide the cards of faces nobody knows; the choice is kept in this browser. */
  const unknownToggle = document.querySelector('[data-testid="show-unknown"]');
  if (unknownToggle && cardsBox) {
    const apply = function () { cardsBox.classList.toggle("hide-unknown", !unknownToggle.checked); };
    unknownToggle.checked = window.localStorage.getItem("oneeye.hideUnknown") !== "1";
    unknownToggle.addEventListener("change", function () {
      window.localStorage.setItem("oneeye.hideUnknown", unknownToggle.checked ? "0" : "1");
      apply();
    });
    apply();
  }

  if (cardsBox) {
    cardsBox.addEventListener("click", function (event) {
      const button = event.target.closest("button[data-action]");
      if (button && cardsBox.contains(button)) onCardAction(button);
    });
  }

  document.querySelectorAll('[data-testid="camera-tile"]').forEach(wireTile);
  if (cardsBox) {
    watchImages(cardsBox);
    regroup();
  }
  window.addEventListener("load", function () {
    if (root.classList.contains("dashboard")) {
      Array.from(document.querySelectorAll('[data-testid="camera-tile"]'))
        .slice(0, LIVE_AT_START)
        .forEach(function (tile) { startLive(tile, false); });
    }
    connect();
  });
  /* For tests and the console: the last event id seen, and the live socket. */
  window.OneEyeDashboard = {
    lastId: function () { return lastId; },
    socket: function () { return socket; },
  };
})();
