"""QR codes as PNG data URLs, and the page that shows an instance's current QR to a person."""

from __future__ import annotations

import html


def png_data_url(text: str) -> str:
    import segno

    return str(segno.make(text, error="l", micro=False).png_data_uri(scale=6, border=4))


def qr_page(instance_id: str, api_path: str) -> str:
    """A page that fetches the QR and follows its rotation. The admin key, when one is needed, is read
    from the URL's fragment (#key=...), which browsers never send to a server."""
    safe_id = html.escape(instance_id)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WhatsApp login · {safe_id}</title>
<style>body{{font-family:system-ui,sans-serif;text-align:center;margin:3em}}img{{width:320px;height:320px}}</style>
</head><body>
<h1>Link WhatsApp</h1>
<p>On the phone: WhatsApp → Settings → Linked devices → Link a device, then scan.</p>
<img id="qr" alt="QR code" hidden><p id="state">Loading…</p>
<script>
const key = new URLSearchParams(location.hash.slice(1)).get("key");
const headers = key ? {{"x-api-key": key}} : {{}};
async function refresh() {{
  try {{
    const answer = await fetch({api_path!r}, {{headers}});
    const body = await answer.json();
    const img = document.getElementById("qr"), state = document.getElementById("state");
    if (body.success) {{ img.src = body.data.qr_url; img.hidden = false; state.textContent = "Waiting for the scan…"; }}
    else {{ img.hidden = true; state.textContent = body.error; }}
  }} catch (error) {{ document.getElementById("state").textContent = String(error); }}
}}
refresh(); setInterval(refresh, 2000);
</script></body></html>"""
