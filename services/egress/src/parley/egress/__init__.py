"""The egress controller (issue 17): livekit.Egress, the EgressInfo records, job placement."""
