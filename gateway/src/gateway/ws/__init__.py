"""The `/ws/chat` WebSocket: handshake, client messages, and one socket's session."""
