"""Real servers the tests start on loopback, never assumed to be running."""
