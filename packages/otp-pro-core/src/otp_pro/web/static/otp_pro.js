/* otp-pro sample scripts: the modal dialog and the AJAX flow. Served from the site (no CDN). */
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function setCsrf(token) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && token) { meta.setAttribute("content", token); }
  }

  // Modal pattern: open the dialog as a real modal (focus trapped, Esc closes).
  document.querySelectorAll("[data-open-dialog]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var dialog = document.getElementById(link.getAttribute("data-open-dialog"));
      if (dialog && dialog.showModal) { event.preventDefault(); dialog.showModal(); }
    });
  });
  document.querySelectorAll("dialog[data-show-modal]").forEach(function (dialog) {
    if (dialog.showModal) { dialog.close(); dialog.showModal(); }
  });

  // AJAX pattern.
  var root = document.querySelector("[data-otp-ajax]");
  if (!root) { return; }
  var error = root.querySelector("[data-error]");
  var status = root.querySelector("[data-status]");
  var passwordForm = root.querySelector('form[data-step="password"]');
  var codeForm = root.querySelector('form[data-step="code"]');
  // The page writes this text in the member's language (the script has no catalog of its own).
  var unreachable = root.getAttribute("data-unreachable") || "The server could not be reached. Try again.";

  function show(box, text) {
    box.textContent = text || "";
    box.hidden = !text;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { data.httpStatus = response.status; return data; });
    });
  }

  function revealCode(data) {
    passwordForm.hidden = true;
    codeForm.hidden = false;
    show(status, data.message || "");
    codeForm.querySelector("input[name=code]").focus();
  }

  passwordForm.addEventListener("submit", function (event) {
    event.preventDefault();
    show(error, "");
    post(root.getAttribute("data-login-url"), {
      email: passwordForm.email.value, password: passwordForm.password.value
    }).then(function (data) {
      setCsrf(data.csrf_token);
      if (!data.ok) { show(error, data.message); return; }
      if (data.step === "code") { revealCode(data); } else { window.location.assign(data.location); }
    }).catch(function () { show(error, unreachable); });
  });

  codeForm.addEventListener("submit", function (event) {
    event.preventDefault();
    show(error, "");
    post(root.getAttribute("data-verify-url"), {
      code: codeForm.code.value, trust_device: codeForm.trust_device.checked
    }).then(function (data) {
      if (data.ok) { window.location.assign(data.location); return; }
      show(error, data.message);
      codeForm.code.select();
    }).catch(function () { show(error, unreachable); });
  });

  root.querySelector("[data-resend]").addEventListener("click", function () {
    show(error, "");
    post(root.getAttribute("data-send-url"), {}).then(function (data) {
      if (data.ok) { show(status, data.message); } else { show(error, data.message); }
    });
  });
})();
