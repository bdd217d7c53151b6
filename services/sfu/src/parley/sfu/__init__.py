"""Selective forwarding unit: WebRTC media with aiortc."""
