"""Card reader: the social security card (SSSE) profile over PC/SC."""
