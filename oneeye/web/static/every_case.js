/* The cases list, for admins: who is told about every case (add and remove, through
   /api/v1/subscriptions). */
"use strict";

(function () {
  const { api, el } = window.OneEye;
  const form = document.getElementById("subscribe-every");
  if (!form) return;
  const panel = document.querySelector('[data-testid="every-case"]');
  const list = panel.querySelector('[data-testid="every-case-list"]');
  const none = panel.querySelector('[data-testid="no-every-case"]');
  const box = form.querySelector('[data-testid="subscribe-result"]');
  const NAMES = { email: "Email", sms: "SMS", webhook: "Webhook", slack: "Slack" };

  function say(text, ok) {
    box.textContent = text;
    box.classList.toggle("ok", !!ok);
    box.classList.toggle("bad", !ok);
  }

  function wireRemove(li) {
    const button = li.querySelector('[data-action="unsubscribe"]');
    button.addEventListener("click", async function () {
      button.disabled = true;
      try {
        await api("DELETE", "/api/v1/subscriptions/" + encodeURIComponent(li.dataset.subscriptionId));
        li.remove();
        if (!list.querySelector('[data-testid="subscription"]')) none.hidden = false;
      } catch (err) {
        button.disabled = false;
        say(err.message, false);
      }
    });
  }

  list.querySelectorAll('[data-testid="subscription"]').forEach(wireRemove);
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const secretBox = form.querySelector('[data-testid="webhook-secret"]');
    const button = form.querySelector("button");
    secretBox.hidden = true;
    button.disabled = true;
    say("working…", true);
    try {
      const sub = await api("POST", "/api/v1/subscriptions", {
        channel: form.elements.channel.value,
        address: form.elements.address.value.trim(),
      });
      const li = el("li", { "data-testid": "subscription", "data-subscription-id": sub.id, "data-channel": sub.channel }, [
        el("strong", { text: NAMES[sub.channel] || sub.channel }), " ",
        el("code", { "data-testid": "subscription-address", text: sub.masked_address }), " ",
        el("button", { type: "button", class: "danger small", "data-action": "unsubscribe", "data-testid": "subscription-remove", text: "Remove" }),
      ]);
      wireRemove(li);
      list.append(li);
      none.hidden = true;
      if (sub.secret) {
        secretBox.querySelector('[data-testid="webhook-secret-value"]').textContent = sub.secret;
        secretBox.hidden = false;
      }
      form.elements.address.value = "";
      say(sub.masked_address + " will be told about every case's sightings", true);
    } catch (err) {
      say(err.message, false);
    } finally {
      button.disabled = false;
    }
  });
})();
