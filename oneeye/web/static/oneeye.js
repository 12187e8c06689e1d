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

  function localizeTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (node) {
      const iso = node.getAttribute("datetime");
      if (iso) {
        node.textContent = localTime(iso);
        node.title = new Date(iso).toLocaleString();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
  });

  return { api: api, csrfToken: csrfToken, el: el, localTime: localTime, localizeTimes: localizeTimes };
})();
