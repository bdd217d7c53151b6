"""Errors of the webhook service."""

from __future__ import annotations


class WebhookError(Exception):
    """Root of the webhook service's errors."""


class DeliveryFailed(WebhookError):
    """One POST did not succeed; it will be retried until the event expires."""

    def __init__(self, reason: str, status: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class MisconfiguredWebhook(WebhookError):
    """URLs are set but no key can sign the requests."""
