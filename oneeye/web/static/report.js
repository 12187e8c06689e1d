/* The report page (made for a phone): the chosen or taken photo is checked by the server at
   once (one clear face?) and the answer shown; the report can be sent only with a usable main
   photo. Sending files the case and opens its page. */
"use strict";

(function () {
  const { api } = window.OneEye;
  const form = document.getElementById("report-form");
  if (!form) return;
  const photo = form.elements.photo;
  const preview = form.querySelector('[data-testid="report-preview"]');
  const check = form.querySelector('[data-testid="photo-check"]');
  const submit = form.querySelector('[data-testid="report-submit"]');
  const error = form.querySelector('[data-testid="report-error"]');
  let usable = false;
  let sending = false;
  let checks = 0; /* only the answer about the newest photo counts */
  let previewUrl = null;

  function showCheck(state, text) {
    check.dataset.state = state;
    check.textContent = text;
  }

  function showError(text) {
    error.textContent = text || "";
    error.hidden = !text;
  }

  function update() {
    submit.disabled = !usable || sending;
  }

  photo.addEventListener("change", async function () {
    const file = photo.files[0];
    const mine = ++checks;
    usable = false;
    update();
    showError("");
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    preview.hidden = true;
    if (!file) {
      showCheck("none", "One clear photo of the face, looking at the camera.");
      return;
    }
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.hidden = false;
    showCheck("checking", "Checking the photo…");
    const data = new FormData();
    data.append("photo", file);
    try {
      const answer = await api("POST", "/api/v1/cases/check-photo", data);
      if (mine !== checks) return;
      usable = !!answer.usable;
      if (usable) {
        const quality = typeof answer.quality === "number" ? " (quality " + answer.quality.toFixed(2) + ")" : "";
        showCheck("ok", "Usable: one clear face" + quality + ".");
      } else {
        showCheck("bad", "Not usable: " + (answer.reason || "no clear face") + ". Take another photo.");
      }
    } catch (err) {
      if (mine !== checks) return;
      showCheck("bad", "Not usable: " + err.message + ".");
    }
    update();
  });

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    showError("");
    const name = form.elements.name.value.trim();
    if (!usable) {
      showError("Choose a photo with one clear face first.");
      return;
    }
    if (!name) {
      showError("Give the person's name.");
      form.elements.name.focus();
      return;
    }
    const data = new FormData();
    data.append("photo", photo.files[0]);
    Array.from(form.elements.photos.files).forEach(function (file) { data.append("photos", file); });
    data.append("name", name);
    data.append("description", form.elements.description.value.trim());
    data.append("contact", form.elements.contact.value.trim());
    const hours = form.elements.expires_hours.value.trim();
    if (hours) data.append("expires_hours", hours);
    sending = true;
    update();
    submit.textContent = "Sending…";
    try {
      const created = await api("POST", "/api/v1/cases", data);
      window.location.assign("/cases/" + encodeURIComponent(created.id));
    } catch (err) {
      showError("The report was not filed: " + err.message);
      sending = false;
      submit.textContent = "Send the report";
      update();
    }
  });
})();
