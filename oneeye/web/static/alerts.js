/* The dashboard's Amber Alert banner: a sighting of an active case's person (an
   "alert.sighting" frame, handed on by dashboard.js as an "oneeye:frame" event) puts a banner
   at the top with the case's photo, the snapshot, the camera and the time, and a link to the
   case. One banner per case (the newest sighting); dismissed ones stay dismissed in this browser
   until the person is seen again. A beep (Web Audio, no sound file) if the user switched sound
   on; the choice is kept in this browser. Notifications that could not be delivered are named
   too. */
"use strict";

(function () {
  const { el, localTime, sightingLabel } = window.OneEye;
  const box = document.getElementById("alerts");
  if (!box) return;
  const DISMISSED = "oneeye.dismissedAlerts";
  const SOUND = "oneeye.alertSound";
  const soundToggle = document.querySelector('[data-testid="alert-sound"]');
  const failedLine = document.querySelector('[data-testid="delivery-failed"]');
  let audio = null;
  let beeps = 0;

  function dismissed() {
    try {
      const list = JSON.parse(window.localStorage.getItem(DISMISSED) || "[]");
      return Array.isArray(list) ? list.map(String) : [];
    } catch (err) {
      return [];
    }
  }

  function dismiss(banner) {
    const list = dismissed().filter(function (id) { return id !== banner.dataset.matchId; });
    list.push(banner.dataset.matchId);
    window.localStorage.setItem(DISMISSED, JSON.stringify(list.slice(-200)));
    banner.remove();
  }

  function wire(banner) {
    const button = banner.querySelector('[data-testid="alert-dismiss"]');
    if (button) button.addEventListener("click", function () { dismiss(banner); });
    /* A photo that cannot be shown (deleted, or not allowed) leaves a plain grey square. */
    banner.querySelectorAll(".alert-photos img").forEach(function (img) {
      if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) img.classList.add("broken");
      img.addEventListener("error", function () { img.classList.add("broken"); });
    });
  }

  function build(d) {
    const camera = d.camera_name || d.camera_id || "";
    return el("article", {
      class: "alert-banner fresh",
      role: "alert",
      "data-testid": "alert-banner",
      "data-case-id": d.case_id,
      "data-match-id": d.match_id,
    }, [
      el("div", { class: "alert-photos" }, [
        d.case_photo_url ? el("img", { "data-testid": "alert-case-photo", src: d.case_photo_url, alt: "Photo of " + (d.case_name || "the person") }) : null,
        d.snapshot_url ? el("img", { "data-testid": "alert-snapshot", src: d.snapshot_url, alt: "Snapshot from " + camera }) : null,
      ]),
      el("div", { class: "alert-body" }, [
        el("p", { class: "alert-kicker", text: "Amber Alert" }),
        el("h2", { "data-testid": "alert-name", text: d.case_name || "A missing person" }),
        el("p", { "data-testid": "alert-label", text: sightingLabel(d, null) }),
        el("p", { class: "meta" }, [
          el("span", { "data-testid": "alert-camera", text: camera }),
          d.location ? " (" + d.location + ")" : "",
          " · ",
          el("time", { "data-testid": "alert-time", datetime: d.seen_at || "", text: localTime(d.seen_at) }),
        ]),
        el("a", { class: "button", "data-testid": "alert-case-link", href: "/cases/" + encodeURIComponent(d.case_id), text: "Open the case" }),
      ]),
      el("button", { type: "button", class: "alert-dismiss", "data-testid": "alert-dismiss", "aria-label": "Dismiss", text: "×" }),
    ]);
  }

  function forCase(caseId) {
    return box.querySelector('[data-testid="alert-banner"][data-case-id="' + CSS.escape(String(caseId)) + '"]');
  }

  function show(d) {
    if (!d.case_id) return;
    const banner = build(d);
    wire(banner);
    const old = forCase(d.case_id);
    if (old) old.remove();
    box.prepend(banner);
    if (soundToggle && soundToggle.checked) beep();
  }

  /* Three short tones; the AudioContext is made when the user turns sound on (a gesture), as
     browsers require before a page may play sound. */
  function beep() {
    if (!audio) return;
    if (audio.state === "suspended") audio.resume();
    const start = audio.currentTime + 0.02;
    [0, 0.22, 0.44].forEach(function (offset) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.type = "square";
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.2, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.16);
      tone.connect(gain).connect(audio.destination);
      tone.start(start + offset);
      tone.stop(start + offset + 0.18);
    });
    beeps += 1;
  }

  function makeAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (audio || !Context) return;
    try { audio = new Context(); } catch (err) { audio = null; /* no sound on this device */ }
  }

  if (soundToggle) {
    soundToggle.checked = window.localStorage.getItem(SOUND) === "1";
    soundToggle.addEventListener("change", function () {
      window.localStorage.setItem(SOUND, soundToggle.checked ? "1" : "0");
      if (soundToggle.checked) {
        makeAudio();
        beep(); /* so the user hears what an alert sounds like */
      }
    });
    /* Sound kept on from an earlier visit starts with the first touch of the page. */
    if (soundToggle.checked) document.addEventListener("pointerdown", makeAudio, { once: true });
  }

  const gone = new Set(dismissed());
  box.querySelectorAll('[data-testid="alert-banner"]').forEach(function (banner) {
    if (gone.has(banner.dataset.matchId)) banner.remove();
    else wire(banner);
  });

  document.addEventListener("oneeye:frame", function (event) {
    const frame = event.detail || {};
    const d = frame.data || {};
    if (frame.type === "alert.sighting") {
      show(d);
    } else if (frame.type === "case.resolved" || frame.type === "case.expired") {
      const banner = forCase(d.case_id);
      if (banner) banner.remove();
    } else if (frame.type === "notify.failed" && failedLine) {
      failedLine.textContent = "A notification (" + (d.channel || "?") + ") for case " +
        (d.case_name || d.case_id || "") + " could not be delivered after " + (d.attempts || "several") +
        " attempts: " + (d.error || "unknown error");
      failedLine.hidden = false;
    }
  });

  /* For tests and the console. */
  window.OneEyeAlerts = { beeps: function () { return beeps; } };
})();
