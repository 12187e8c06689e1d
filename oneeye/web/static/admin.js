/* Admin pages: forms that call the JSON API (with the session's CSRF token) and show its answer
   or its error sentence next to the form. */
"use strict";

(function () {
  const { api, el } = window.OneEye;

  function result(form, text, ok) {
    const box = form.querySelector(".result");
    if (!box) return;
    box.textContent = text;
    box.classList.toggle("ok", !!ok);
    box.classList.toggle("bad", !ok);
  }

  /* Run `action` on submit; busy while it runs; its error sentence shown on failure. */
  function onSubmit(form, action) {
    if (!form) return;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const buttons = form.querySelectorAll("button");
      buttons.forEach(function (b) { b.disabled = true; });
      result(form, "working…", true);
      try {
        const message = await action(form);
        result(form, message || "done", true);
      } catch (err) {
        result(form, err.message, false);
      } finally {
        buttons.forEach(function (b) { b.disabled = false; });
      }
    });
  }

  function value(form, name) {
    const field = form.elements[name];
    return field ? field.value.trim() : "";
  }

  function checked(form, name) {
    const field = form.elements[name];
    return field ? field.checked : false;
  }

  function fileForm(file) {
    const data = new FormData();
    data.append("file", file);
    return data;
  }

  function reloadSoon() { window.setTimeout(function () { window.location.reload(); }, 400); }

  /* Customers -------------------------------------------------------------------------------- */

  /* The same caption the server renders under an enrolled photo. */
  function qualityText(t) {
    const parts = [];
    if (typeof t.quality === "number") parts.push("quality " + t.quality.toFixed(2));
    if (typeof t.sharpness === "number") parts.push("sharpness " + t.sharpness.toFixed(0));
    if (typeof t.frontalness === "number") parts.push("frontalness " + t.frontalness.toFixed(2));
    if (typeof t.size_px === "number") parts.push(Math.round(t.size_px) + " px");
    return parts.join(" · ");
  }

  onSubmit(document.getElementById("create-customer"), async function (form) {
    const accountId = value(form, "account_id");
    await api("POST", "/api/v1/customers", {
      account_id: accountId,
      name: value(form, "name"),
      account_type: value(form, "account_type"),
      address: value(form, "address"),
      balance: value(form, "balance") || "0.00",
      currency: value(form, "currency") || "USD",
    });
    const photo = form.elements.photo.files[0];
    if (photo) {
      await api("POST", "/api/v1/customers/" + encodeURIComponent(accountId) + "/photo", fileForm(photo));
    }
    reloadSoon();
    return "customer " + accountId + " created";
  });

  async function personFor(row) {
    if (row.dataset.personId) return row.dataset.personId;
    const person = await api("POST", "/api/v1/people", {
      name: row.dataset.name,
      account_id: row.dataset.accountId,
      watchlists: ["customers"],
    });
    row.dataset.personId = person.id;
    return person.id;
  }

  function thumbnailUrl(personId, templateId) {
    return "/api/v1/people/" + encodeURIComponent(personId) + "/templates/" + encodeURIComponent(templateId) + "/thumbnail";
  }

  /* Delete an enrolled face: its photo, its template and its gallery entries everywhere. */
  function wireTemplateDelete(figure, say) {
    const button = figure.querySelector('[data-action="delete-template"]');
    if (!button) return;
    button.addEventListener("click", async function () {
      if (!window.confirm("Delete this enrolled face? The cameras stop using it at once.")) return;
      button.disabled = true;
      try {
        await api("DELETE", "/api/v1/people/" + encodeURIComponent(figure.dataset.personId) +
          "/templates/" + encodeURIComponent(figure.dataset.templateId));
        figure.remove();
        say("face deleted", true);
      } catch (err) {
        button.disabled = false;
        say(err.message, false);
      }
    });
  }

  /* Enrol a face photo (and/or set the profile photo) for the customer `row` describes. */
  function wireEnrol(row, form, box, deletable) {
    if (!form) return;
    form.elements.file.required = false;
    onSubmit(form, async function () {
      const messages = [];
      const profile = form.elements.profile.files[0];
      if (profile) {
        await api("POST", "/api/v1/customers/" + encodeURIComponent(row.dataset.accountId) + "/photo", fileForm(profile));
        messages.push("profile photo saved");
      }
      const file = form.elements.file.files[0];
      if (file) {
        const personId = await personFor(row);
        /* The server refuses (409) a photo that may show someone else unless it is forced. */
        const force = form.elements.force && form.elements.force.checked ? "?force=true" : "";
        const template = await api("POST", "/api/v1/people/" + encodeURIComponent(personId) + "/photos" + force, fileForm(file));
        const text = qualityText(template);
        const children = [
          el("img", { src: thumbnailUrl(personId, template.id), alt: "Enrolled face" }),
          el("figcaption", { "data-testid": "template-quality", text: text }),
        ];
        if (deletable) {
          children.push(el("button", { type: "button", class: "danger small", "data-action": "delete-template", "data-testid": "template-delete", text: "Delete face" }));
        }
        const figure = el("figure", { class: "template", "data-testid": "template", "data-template-id": template.id, "data-person-id": personId }, children);
        box.append(figure);
        if (deletable) wireTemplateDelete(figure, function (t, ok) { result(form, t, ok); });
        messages.push("enrolled: " + text);
        if (template.same_face && template.same_face.suspicious) messages.push("enrolled although it may show someone else (audited)");
      }
      if (!messages.length) throw new Error("choose a face photo (or a profile photo) first");
      form.reset();
      return messages.join("; ");
    });
  }

  document.querySelectorAll('[data-testid="customer-row"]').forEach(function (row) {
    wireEnrol(row, row.querySelector('[data-testid="enrol-form"]'), row.querySelector('[data-testid="templates"]'), false);
  });

  /* One customer's page: edit, enrol, delete a face, delete the customer. */
  const detail = document.querySelector('[data-testid="customer-detail"]');
  if (detail) {
    const accountUrl = "/api/v1/customers/" + encodeURIComponent(detail.dataset.accountId);
    onSubmit(document.getElementById("edit-customer"), async function (form) {
      const card = await api("PUT", accountUrl, {
        name: value(form, "name"),
        account_type: value(form, "account_type"),
        address: value(form, "address"),
        balance: value(form, "balance") || "0.00",
        currency: value(form, "currency") || "USD",
      });
      document.querySelector('[data-testid="customer-name-heading"]').textContent = card.name;
      detail.dataset.name = card.name;
      return "saved";
    });
    const box = document.querySelector('[data-testid="templates"]');
    const status = document.querySelector('[data-testid="template-result"]');
    const say = function (text, ok) {
      status.textContent = text;
      status.classList.toggle("ok", !!ok);
      status.classList.toggle("bad", !ok);
    };
    box.querySelectorAll('[data-testid="template"]').forEach(function (figure) { wireTemplateDelete(figure, say); });
    wireEnrol(detail, document.querySelector('[data-testid="enrol-form"]'), box, true);
    const erase = document.querySelector('[data-action="erase-customer"]');
    erase.addEventListener("click", async function () {
      const out = document.querySelector('[data-testid="customer-erase-result"]');
      if (!window.confirm("Delete " + detail.dataset.name + " and everything held about them? This cannot be undone.")) return;
      erase.disabled = true;
      try {
        await api("POST", accountUrl + "/erase");
        out.textContent = "deleted";
        window.location.assign("/admin/customers");
      } catch (err) {
        erase.disabled = false;
        out.textContent = err.message;
        out.classList.add("bad");
      }
    });
  }

  /* Unknown faces: enrol a group's best face into a customer. */
  document.querySelectorAll('[data-testid="name-unknown-form"]').forEach(function (form) {
    onSubmit(form, async function () {
      const body = { account_id: value(form, "account_id") };
      if (value(form, "name")) body.name = value(form, "name");
      const named = await api("POST", "/api/v1/unknowns/" + encodeURIComponent(form.dataset.sightingId) + "/name", body);
      return "enrolled into " + body.account_id + " (" + qualityText(named.template) + ")";
    });
  });

  /* Cameras ---------------------------------------------------------------------------------- */

  /* A blank number means "the server's setting" (null). */
  function optionalInt(form, name) {
    const text = value(form, name);
    return text ? parseInt(text, 10) : null;
  }

  function cameraFields(form) {
    return {
      name: value(form, "name"),
      location: value(form, "location"),
      source: value(form, "source"),
      min_face_px: parseInt(value(form, "min_face_px") || "40", 10),
      detect_every: parseInt(value(form, "detect_every") || "3", 10),
      scan_every: optionalInt(form, "scan_every"),
      detect_threads: optionalInt(form, "detect_threads"),
      detector: value(form, "detector") || null,
      pace: checked(form, "pace"),
      loop: checked(form, "loop"),
    };
  }

  /* The browser's own "match the requested format" says nothing: say the id rule in words. */
  const cameraId = document.querySelector('[data-testid="camera-id"]');
  if (cameraId) {
    const check = function () {
      cameraId.setCustomValidity(cameraId.validity.patternMismatch ? cameraId.dataset.rule : "");
    };
    cameraId.addEventListener("input", check);
    check();
  }

  onSubmit(document.getElementById("add-camera"), async function (form) {
    const body = Object.assign({ id: value(form, "id"), enabled: checked(form, "enabled") }, cameraFields(form));
    await api("POST", "/api/v1/cameras", body);
    reloadSoon();
    return "camera " + body.id + " added";
  });

  document.querySelectorAll('[data-testid="camera-edit-form"]').forEach(function (form) {
    const id = form.dataset.cameraId;
    const url = "/api/v1/cameras/" + encodeURIComponent(id);
    onSubmit(form, async function () {
      await api("PATCH", url, cameraFields(form));
      return "saved";
    });
    form.querySelector('[data-action="toggle"]').addEventListener("click", async function (event) {
      const button = event.currentTarget;
      const enable = button.dataset.enabled !== "true";
      try {
        await api("PATCH", url, { enabled: enable });
        button.dataset.enabled = enable ? "true" : "false";
        button.textContent = enable ? "Disable" : "Enable";
        form.querySelector('[data-action="restart"]').hidden = !enable;
        result(form, enable ? "enabled" : "disabled", true);
      } catch (err) {
        result(form, err.message, false);
      }
    });
    form.querySelector('[data-action="restart"]').addEventListener("click", async function () {
      try {
        const camera = await api("POST", url + "/restart");
        result(form, "restarted: " + camera.status.state, true);
      } catch (err) {
        result(form, err.message, false);
      }
    });
    form.querySelector('[data-action="remove"]').addEventListener("click", async function () {
      if (!window.confirm("Remove camera " + id + "? Its past sightings are kept.")) return;
      try {
        await api("DELETE", url);
        form.closest('[data-testid="camera-row"]').remove();
      } catch (err) {
        result(form, err.message, false);
      }
    });
  });

  /* Users and API keys ----------------------------------------------------------------------- */

  onSubmit(document.getElementById("add-user"), async function (form) {
    await api("POST", "/api/v1/users", {
      username: value(form, "username"),
      password: form.elements.password.value,
      role: value(form, "role"),
    });
    reloadSoon();
    return "user " + value(form, "username") + " added";
  });

  document.querySelectorAll('[data-testid="user-row"]').forEach(function (row) {
    const url = "/api/v1/users/" + encodeURIComponent(row.dataset.userId);
    const say = function (text, ok) {
      const box = row.querySelector(".result");
      box.textContent = text;
      box.classList.toggle("bad", !ok);
    };
    row.querySelector('[data-action="role"]').addEventListener("change", async function (event) {
      try {
        await api("PATCH", url, { role: event.currentTarget.value });
        say("role changed", true);
      } catch (err) {
        say(err.message, false);
      }
    });
    const resetButton = row.querySelector('[data-action="reset-password"]');
    if (resetButton) resetButton.addEventListener("click", async function () {
      const name = row.querySelector('[data-testid="user-row-name"]').textContent;
      if (!window.confirm("Reset the password of " + name + "? They are logged out everywhere.")) return;
      try {
        const reset = await api("POST", url + "/password-reset");
        const box = row.querySelector('[data-testid="one-time-password"]');
        box.querySelector('[data-testid="one-time-password-value"]').textContent = reset.password;
        box.hidden = false;
        say("password reset", true);
      } catch (err) {
        say(err.message, false);
      }
    });
    row.querySelectorAll('[data-action="deactivate"], [data-action="activate"]').forEach(function (button) {
      button.addEventListener("click", async function () {
        try {
          await api("PATCH", url, { active: button.dataset.action === "activate" });
          reloadSoon();
        } catch (err) {
          say(err.message, false);
        }
      });
    });
  });

  /* An edge key names its edge: the field shows (and is required) for that role only. */
  const keyForm = document.getElementById("add-key");
  if (keyForm) {
    const edgeField = keyForm.querySelector('[data-testid="key-edge-field"]');
    const showEdge = function () {
      const edge = value(keyForm, "role") === "edge";
      edgeField.hidden = !edge;
      keyForm.elements.edge_id.required = edge;
    };
    keyForm.elements.role.addEventListener("change", showEdge);
    showEdge();
  }

  onSubmit(keyForm, async function (form) {
    const body = { name: value(form, "name"), role: value(form, "role") };
    if (body.role === "edge") body.edge_id = value(form, "edge_id");
    const created = await api("POST", "/api/v1/api-keys", body);
    const secret = created.key || created.api_key || created.secret || created.token || "";
    const box = form.querySelector('[data-testid="new-key"]');
    box.querySelector('[data-testid="new-key-value"]').textContent = secret;
    box.hidden = false;
    return "key " + (created.name || value(form, "name")) + " created";
  });

  document.querySelectorAll('[data-testid="key-row"]').forEach(function (row) {
    const button = row.querySelector('[data-action="revoke"]');
    if (!button) return;
    button.addEventListener("click", async function () {
      try {
        await api("DELETE", "/api/v1/api-keys/" + encodeURIComponent(row.dataset.keyId));
        reloadSoon();
      } catch (err) {
        row.querySelector(".result").textContent = err.message;
      }
    });
  });
})();
