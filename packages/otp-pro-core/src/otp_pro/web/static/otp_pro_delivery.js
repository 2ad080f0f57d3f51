/* otp-pro verify page: while a code is on its way (a task-queue dispatcher), ask
   /otp/api/delivery every 2 s and reload the page once the delivery is sent or failed,
   so it shows the result and, after a failure, the other methods. No CDN, no inline script. */
(function () {
  "use strict";
  var box = document.getElementById("delivery-status");
  if (!box || !box.getAttribute("data-poll-url")) { return; }
  var url = box.getAttribute("data-poll-url");
  var tries = 0;

  function poll() {
    tries += 1;
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (data.ok && data.message) { box.textContent = data.message; }
        if (data.ok && data.done) { window.location.reload(); return; }
        if (tries < 90) { window.setTimeout(poll, 2000); }
      })
      .catch(function () { if (tries < 90) { window.setTimeout(poll, 4000); } });
  }

  window.setTimeout(poll, 1000);
})();
