"""vit family: registration (filled in by the family's implementation)."""
