/* otp-pro: factors answered in the browser instead of typed (the flow layer's ceremonies).

   Each element with data-otp-ceremony="<input kind>" sits in a form with a hidden "answer"
   field. Its button runs the ceremony of that kind over the options in data-options (a setup)
   or over a challenge asked with POST data-challenge-url {"channel": data-channel} (sign-in),
   puts the result, as JSON, in "answer" and submits the form. The server judges the answer.

   The one kind known here is "webauthn", the web standard (navigator.credentials.create/get)
   that every browser and every adapter share: binary fields travel as base64url strings.
   The page renders the button disabled; it is enabled once wired here. Without WebAuthn it stays
   disabled and the page says so. What it says comes from the page's data-texts (in the member's
   language), else from FALLBACK. No CDN, no inline script. */
(function () {
  "use strict";

  /* The texts come from the page (data-texts, in the member's language); these are for a page without. */
  var FALLBACK = {
    unavailable_webauthn: "This browser cannot use passkeys or security keys (it has no WebAuthn). " +
      "Use another method, or another browser.",
    unavailable: "This browser cannot answer this method. Use another method.",
    prompt: "Follow your browser's prompt...",
    cancelled: "Cancelled, or no passkey answered. Try again.",
    failed: "That did not work. Try again.",
    not_started: "The sign-in could not start."
  };

  function textsOf(box) {
    var given = {};
    try { given = JSON.parse(box.getAttribute("data-texts") || "{}"); } catch (ignored) { given = {}; }
    return function (key) { return given[key] || FALLBACK[key]; };
  }

  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) { out[i] = raw.charCodeAt(i); }
    return out.buffer;
  }

  function toText(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i += 1) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var copy = Object.assign({}, d);
      copy.id = toBytes(d.id);
      return copy;
    });
  }

  /* The options as the server sent them (JSON) -> what navigator.credentials wants (buffers). */
  function publicKeyOf(show) {
    var options = Object.assign({}, show.publicKey);
    options.challenge = toBytes(options.challenge);
    if (options.user) { options.user = Object.assign({}, options.user, {id: toBytes(options.user.id)}); }
    if (options.excludeCredentials) { options.excludeCredentials = descriptors(options.excludeCredentials); }
    if (options.allowCredentials) { options.allowCredentials = descriptors(options.allowCredentials); }
    return options;
  }

  /* A PublicKeyCredential -> the JSON the server verifies (WebAuthn level 3's toJSON shape). */
  function credentialJson(credential) {
    var r = credential.response, response = {clientDataJSON: toText(r.clientDataJSON)};
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = toText(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id, rawId: toText(credential.rawId), type: credential.type, response: response,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {}
    });
  }

  var ceremonies = {
    webauthn: {
      available: function () { return !!(window.PublicKeyCredential && navigator.credentials); },
      run: function (show) {
        var publicKey = publicKeyOf(show);
        var asked = show.ceremony === "create" ? navigator.credentials.create({publicKey: publicKey})
          : navigator.credentials.get({publicKey: publicKey, mediation: show.mediation || "optional"});
        return asked.then(function (credential) {
          if (!credential) {  // no authenticator answered: said as a cancel
            var none = new Error("no credential");
            none.name = "NotAllowedError";
            throw none;
          }
          return credentialJson(credential);
        });
      }
    }
  };

  function csrfToken(form) {
    var field = form && form.querySelector("input[name=csrf_token]");
    if (field) { return field.value; }
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.getAttribute("content") : "";
  }

  function challenge(box, form) {
    return fetch(box.getAttribute("data-challenge-url"), {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrfToken(form)},
      body: JSON.stringify({channel: box.getAttribute("data-channel")})
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!data.ok) { throw new Error(data.message || textsOf(box)("not_started")); }
        return data.show;
      });
    });
  }

  function wire(box) {
    var kind = ceremonies[box.getAttribute("data-otp-ceremony")];
    var button = box.querySelector("[data-otp-ceremony-start]");
    var status = box.querySelector("[data-otp-ceremony-status]");
    var form = box.closest("form");
    if (!button || !form) { return; }
    var text = textsOf(box), name = box.getAttribute("data-otp-ceremony");
    function say(words) { if (status) { status.textContent = words; } }
    if (!kind || !kind.available()) {
      button.disabled = true;
      say(kind ? text("unavailable_" + name) : text("unavailable"));
      box.setAttribute("data-otp-ceremony-state", "unavailable");
      return;
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      say(text("prompt"));
      var options = box.getAttribute("data-options");
      var shown = options ? Promise.resolve(JSON.parse(options)) : challenge(box, form);
      shown.then(kind.run).then(function (answer) {
        form.querySelector("input[name=answer]").value = answer;
        var trust = document.getElementById("trust"), mine = form.querySelector("input[name=trust]");
        if (trust && mine) { mine.value = trust.checked ? "1" : ""; }
        box.setAttribute("data-otp-ceremony-state", "answered");
        form.submit();
      }).catch(function (error) {
        button.disabled = false;
        box.setAttribute("data-otp-ceremony-state", "failed");
        // NotAllowedError: the member cancelled, or the browser timed out, or no authenticator answered.
        say(error && error.name === "NotAllowedError" ? text("cancelled") : (error && error.message) || text("failed"));
      });
    });
    button.disabled = false;  // the page renders it disabled until now
    box.setAttribute("data-otp-ceremony-state", "ready");
  }

  document.querySelectorAll("[data-otp-ceremony]").forEach(wire);
})();
