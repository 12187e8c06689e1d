/* A case's page: new sightings of the person join the timeline as they happen (over /ws);
   its filer, coordinators and admins resolve the case and manage who is told, coordinators and
   admins approve it, through the JSON API. */
"use strict";

(function () {
  const { api, el, live, localDateTime, sightingLabel } = window.OneEye;
  const root = document.getElementById("case");
  if (!root) return;
  const caseId = root.dataset.caseId;
  const filedAt = new Date(root.dataset.filedAt);
  const timeline = root.querySelector('[data-testid="timeline"]');
  const statusBadge = root.querySelector('[data-testid="case-status"]');
  const wsStatus = root.querySelector('[data-testid="ws-status"]');
  const result = root.querySelector('[data-testid="case-result"]');

  function say(box, text, ok) {
    if (!box) return;
    box.textContent = text;
    box.classList.toggle("ok", !!ok);
    box.classList.toggle("bad", !ok);
  }

  function entry(d) {
    const camera = d.camera_name || d.camera_id || "";
    return el("li", {
      class: "sighting kind-" + (d.kind || "live") + " fresh",
      "data-testid": "timeline-entry",
      "data-match-id": d.match_id,
      "data-sighting-id": d.sighting_id,
      "data-kind": d.kind || "live",
    }, [
      d.snapshot_url
        ? el("img", { class: "snapshot", "data-testid": "timeline-snapshot", src: d.snapshot_url, alt: "Snapshot from " + camera })
        : el("span", { class: "snapshot none", "aria-hidden": "true" }),
      el("div", {}, [
        el("p", { class: "label", "data-testid": "timeline-label", text: sightingLabel(d, filedAt) }),
        el("p", { class: "meta" }, [
          el("span", { class: "kind", "data-testid": "timeline-kind", text: d.kind === "retro" ? "earlier footage" : "live" }),
          " · ",
          el("span", { "data-testid": "timeline-camera", text: camera }),
          d.location ? " (" + d.location + ")" : "",
          " · ",
          el("time", { class: "datetime", "data-testid": "timeline-time", datetime: d.seen_at || "", text: localDateTime(d.seen_at) }),
          " · ",
          el("span", {
            class: "likeness", "data-testid": "timeline-likeness", text: d.likeness || "a likeness",
            "data-distance": typeof d.distance === "number" ? d.distance.toFixed(3) : "",
            title: typeof d.distance === "number" ? "face distance " + d.distance.toFixed(3) + ": smaller is more alike" : "",
          }),
        ]),
        root.dataset.judge === "yes"
          ? el("p", { class: "card-actions", "data-testid": "timeline-actions" }, [
              el("button", { type: "button", class: "small", "data-action": "confirm", "data-testid": "timeline-confirm", text: "It is them" }), " ",
              el("button", { type: "button", class: "small danger", "data-action": "reject", "data-testid": "timeline-reject", text: "Not them" }),
            ])
          : null,
        root.dataset.judge === "yes" ? el("p", { class: "card-result", role: "status", "data-testid": "timeline-result" }) : null,
      ]),
    ]);
  }

  /* "It is them" / "Not them" on a sighting (coordinators and admins; the API checks again). */
  function withdraw(sightingId) {
    const li = timeline.querySelector('[data-sighting-id="' + CSS.escape(sightingId) + '"]');
    if (li) li.remove();
  }

  timeline.addEventListener("click", async function (event) {
    const button = event.target.closest("button[data-action]");
    const li = button && button.closest('[data-testid="timeline-entry"]');
    if (!li) return;
    const result = li.querySelector('[data-testid="timeline-result"]');
    button.disabled = true;
    try {
      await api("POST", "/api/v1/sightings/" + encodeURIComponent(li.dataset.sightingId) + "/verdict", { verdict: button.dataset.action });
      if (button.dataset.action === "reject") withdraw(li.dataset.sightingId);
      else {
        const actions = li.querySelector('[data-testid="timeline-actions"]');
        if (actions) actions.replaceChildren(el("span", { "data-testid": "timeline-confirmed", text: "Confirmed" }));
      }
    } catch (err) {
      button.disabled = false;
      if (result) result.textContent = err.message;
    }
  });

  function addSighting(d) {
    if (d.match_id !== undefined && timeline.querySelector('[data-match-id="' + CSS.escape(String(d.match_id)) + '"]')) return;
    /* Newest first by the time the person was seen (a retro match may be older than others). */
    const node = entry(d);
    watchImages(node);
    const seen = new Date(d.seen_at).getTime();
    const later = Array.from(timeline.children).find(function (li) {
      const time = li.querySelector("time");
      return time && new Date(time.getAttribute("datetime")).getTime() < seen;
    });
    timeline.insertBefore(node, later || null);
    const empty = root.querySelector('[data-testid="no-sightings"]');
    if (empty) empty.hidden = true;
  }

  function closed(status) {
    root.dataset.status = status;
    statusBadge.textContent = status;
    statusBadge.className = "status case-" + status;
    root.querySelectorAll('[data-testid="case-resolve"], [data-testid="case-approve"]').forEach(function (button) {
      button.closest(".actions").remove();
    });
  }

  function approved(at) {
    const fact = root.querySelector('[data-testid="case-approval"]');
    if (fact) {
      fact.dataset.approved = "yes";
      fact.textContent = "approved " + localDateTime(at) + ": sightings are sent to the subscribers";
    }
    const button = root.querySelector('[data-testid="case-approve"]');
    if (button) button.closest(".actions").remove();
  }

  /* A photo that cannot be shown (deleted, or not allowed) leaves a plain grey square. */
  function watchImages(node) {
    node.querySelectorAll("img").forEach(function (img) {
      if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) img.classList.add("broken");
      img.addEventListener("error", function () { img.classList.add("broken"); });
    });
  }
  watchImages(root);

  const resolve = root.querySelector('[data-testid="case-resolve"]');
  if (resolve) {
    resolve.addEventListener("click", async function () {
      if (!window.confirm("Resolve this case? Cameras stop looking for the person and nobody is told any more.")) return;
      resolve.disabled = true;
      say(result, "resolving…", true);
      try {
        const answer = await api("POST", "/api/v1/cases/" + encodeURIComponent(caseId) + "/resolve");
        closed(answer.status);
        say(result, "The case is resolved; the cameras have stopped looking.", true);
      } catch (err) {
        say(result, err.message, false);
        resolve.disabled = false;
      }
    });
  }

  const approve = root.querySelector('[data-testid="case-approve"]');
  if (approve) {
    approve.addEventListener("click", async function () {
      if (!window.confirm("Approve this case? Its sightings, including those found so far, are sent to every subscriber. Check the case and who is subscribed first.")) return;
      approve.disabled = true;
      say(result, "approving…", true);
      try {
        const answer = await api("POST", "/api/v1/cases/" + encodeURIComponent(caseId) + "/approve");
        approved(answer.approved_at);
        say(result, "The case is approved; its sightings go to the subscribers.", true);
      } catch (err) {
        say(result, err.message, false);
        approve.disabled = false;
      }
    });
  }

  /* Subscriptions ------------------------------------------------------------------------------ */

  const CHANNEL_NAMES = { email: "Email", sms: "SMS", webhook: "Webhook", slack: "Slack" };

  function wireRemove(li) {
    const button = li.querySelector('[data-action="unsubscribe"]');
    if (!button) return;
    button.addEventListener("click", async function () {
      button.disabled = true;
      try {
        await api("DELETE", "/api/v1/subscriptions/" + encodeURIComponent(li.dataset.subscriptionId));
        li.remove();
        const none = root.querySelector('[data-testid="no-subscriptions"]');
        if (none && !root.querySelector('[data-testid="subscription"]')) none.hidden = false;
      } catch (err) {
        button.disabled = false;
        button.title = err.message;
        say(root.querySelector('[data-testid="subscribe-result"]'), err.message, false);
      }
    });
  }

  root.querySelectorAll('[data-testid="subscription"]').forEach(wireRemove);
  const subscribe = document.getElementById("subscribe");
  if (subscribe) {
    subscribe.addEventListener("submit", async function (event) {
      event.preventDefault();
      const box = subscribe.querySelector('[data-testid="subscribe-result"]');
      const secretBox = subscribe.querySelector('[data-testid="webhook-secret"]');
      const button = subscribe.querySelector("button");
      secretBox.hidden = true;
      button.disabled = true;
      say(box, "working…", true);
      try {
        const sub = await api("POST", "/api/v1/cases/" + encodeURIComponent(caseId) + "/subscriptions", {
          channel: subscribe.elements.channel.value,
          address: subscribe.elements.address.value.trim(),
        });
        const li = el("li", {
          "data-testid": "subscription", "data-subscription-id": sub.id, "data-channel": sub.channel,
          "data-every-case": "no", "data-sent": 0, "data-pending": 0, "data-retrying": 0, "data-failed": 0,
        }, [
          el("strong", { text: CHANNEL_NAMES[sub.channel] || sub.channel }), " ",
          el("code", { "data-testid": "subscription-address", text: sub.masked_address }), " ",
          el("span", { class: "told", "data-testid": "subscription-told", text: "not told of any sighting yet" }), " ",
          el("button", { type: "button", class: "danger small", "data-action": "unsubscribe", "data-testid": "subscription-remove", text: "Remove" }),
        ]);
        wireRemove(li);
        root.querySelector(".subscriptions").append(li);
        const none = root.querySelector('[data-testid="no-subscriptions"]');
        if (none) none.hidden = true;
        if (sub.secret) {
          secretBox.querySelector('[data-testid="webhook-secret-value"]').textContent = sub.secret;
          secretBox.hidden = false;
        }
        subscribe.elements.address.value = "";
        say(box, sub.masked_address + " will be told of the next sighting", true);
      } catch (err) {
        say(box, err.message, false);
      } finally {
        button.disabled = false;
      }
    });
  }

  /* Live ----------------------------------------------------------------------------------------- */

  function onFrame(frame) {
    const d = frame.data || {};
    if (frame.type === "camera.status") { window.OneEye.cameraWatch(d); return; }
    if (frame.type === "sighting.withdrawn") { withdraw(d.sighting_id || ""); return; }
    if (d.case_id !== caseId) return;
    if (frame.type === "alert.sighting") addSighting(d);
    else if (frame.type === "case.resolved" || frame.type === "case.expired") closed(d.status || frame.type.slice(5));
    else if (frame.type === "case.approved") {
      /* Sightings held from this reader until now are released: show them. */
      if (root.dataset.heldHidden === "yes") window.location.reload();
      else approved(d.approved_at || new Date().toISOString());
    }
  }

  function onState(state) {
    if (!wsStatus) return;
    wsStatus.dataset.state = state;
    wsStatus.textContent = state === "live" ? "live" : "reconnecting…";
  }

  window.addEventListener("load", function () {
    const since = parseInt(root.dataset.lastEventId || "0", 10) || 0;
    window.OneEyeCase = live(since, onFrame, onState);
  });
})();
