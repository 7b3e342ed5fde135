"""Report subscriptions: the API, and the scheduler that produces their reports."""
