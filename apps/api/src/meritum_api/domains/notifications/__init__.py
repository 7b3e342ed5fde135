"""In-app notifications and their email outbox (subscriptions spec section 4)."""
