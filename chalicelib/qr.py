"""QR codes as PNG data URLs, and the page that shows an instance's current QR to a person."""

from __future__ import annotations

from urllib.parse import quote

from .pages import attr


def png_data_url(text: str) -> str:
    import segno

    return str(segno.make(text, error="l", micro=False).png_data_uri(scale=6, border=4))


def qr_page(instance_id: str) -> str:
    """The page at /qr-page/<id>. Its script (static/qr.js) fetches the QR and follows its rotation; the
    admin key, when one is needed, is read from the URL's fragment (#key=...), which browsers never
    send to a server. Every URL is relative to the page's own, so it holds under a stage prefix."""
    api_path = f"../api/v1/instances/{quote(instance_id, safe='')}/qr"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WhatsApp login · {attr(instance_id)}</title>
<meta name="referrer" content="no-referrer">
<link rel="stylesheet" href="../static/qr.css">
<script src="../static/qr.js" defer></script>
</head><body data-qr-url="{attr(api_path)}">
<h1>Link WhatsApp</h1>
<p>On the phone: WhatsApp → Settings → Linked devices → Link a device, then scan.</p>
<img id="qr" alt="QR code" hidden><p id="state">Loading…</p>
</body></html>"""
