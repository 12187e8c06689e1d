/* The report page (made for a phone): the chosen or taken photo is checked by the server at
   once (one clear face?) and the answer shown in plain words; the report can be sent only with
   a usable main photo. Sending files the case (subscribing the email and phone given) and opens
   its page. */
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

  const FIELDS = {
    name: "the name", description: "the description", contact: "the contact",
    email: "your email", phone: "your mobile number", expires_hours: "the hours",
  };

  /* The API's error in words for a parent (the API speaks to engineers). */
  function plainError(err) {
    const message = err.message || "";
    if (err.status === 413) return "A photo is too large. Please choose a smaller photo, or take a new one.";
    if (err.status === 503) return "The server is busy right now. Please try again in a minute.";
    if (err.status === 422 && err.fields && err.fields.length) {
      const names = err.fields.map(function (f) { return FIELDS[f.field] || f.field; });
      return "Please check " + names.join(" and ") + ".";
    }
    if (err.status === 422) {
      const photo = message.indexOf(": ") > 0 ? message.slice(0, message.indexOf(": ")) : "";
      return (photo ? "The photo " + photo + " cannot be used. " : "A photo cannot be used. ")
        + "Please choose photos where only your child's face is clearly visible, close up.";
    }
    if (/not set up/.test(message)) return message.charAt(0).toUpperCase() + message.slice(1) + ".";
    if (/^an email subscription/.test(message)) return "Please check your email address: it should look like name@example.org.";
    if (/^an SMS subscription/.test(message)) return "Please check your mobile number: write it with the country code, like +44 7700 900123.";
    return message.charAt(0).toUpperCase() + message.slice(1);
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
        showCheck("ok", "Usable: one clear face. This photo is good to send.");
      } else {
        showCheck("bad", answer.advice || "We could not use this photo. Please choose another clear photo of the face.");
      }
    } catch (err) {
      if (mine !== checks) return;
      showCheck("bad", plainError(err));
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
    ["email", "phone"].forEach(function (field) {
      const input = form.elements[field];
      if (input && input.value.trim()) data.append(field, input.value.trim());
    });
    const hours = form.elements.expires_hours.value.trim();
    if (hours) data.append("expires_hours", hours);
    sending = true;
    update();
    submit.textContent = "Sending…";
    try {
      const created = await api("POST", "/api/v1/cases", data);
      window.location.assign("/cases/" + encodeURIComponent(created.id));
    } catch (err) {
      showError("The report was not sent. " + plainError(err));
      sending = false;
      submit.textContent = "Send the report";
      update();
    }
  });
})();
