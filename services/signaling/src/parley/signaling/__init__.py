"""Client-facing edge: /rtc, /rtc/v1, /agent, Twirp and gRPC APIs."""
