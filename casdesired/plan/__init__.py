"""Plan: ordered changes with their safety notes, and the renderers that show them."""
