"""cipherdesk: gateway."""
