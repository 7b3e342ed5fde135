"""Who is asking: the authenticated context every scoped operation takes."""
