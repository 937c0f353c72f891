"""Who may do what: API keys (stored hashed, scoped), their check on requests, per-key rate limits and
browser sessions made from a key."""
