// The QR page's script (chalicelib/qr.py): shows the instance's current QR and follows its rotation.
// The page hands over the QR API path in data-qr-url; the admin key, when one is needed, comes from the
// URL's fragment (#key=...), which browsers never send to a server. Text goes in with textContent only.
"use strict";
(function () {
  const qrUrl = document.body.dataset.qrUrl;
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  const headers = key ? {"x-api-key": key} : {};
  const img = document.getElementById("qr");
  const state = document.getElementById("state");

  async function refresh() {
    try {
      const answer = await fetch(qrUrl, {headers, credentials: "omit", cache: "no-store"});
      const body = await answer.json();
      const src = body.success && body.data && body.data.qr_url;
      if (typeof src === "string" && src.startsWith("data:image/png;base64,")) {
        img.src = src;
        img.hidden = false;
        state.textContent = "Waiting for the scan…";
      } else {
        img.hidden = true;
        state.textContent = String(body.error || "No QR code");
      }
    } catch (error) {
      state.textContent = String(error);
    }
  }

  refresh();
  setInterval(refresh, 2000);
})();
