"""Signed, ordered, lossless webhook delivery."""
