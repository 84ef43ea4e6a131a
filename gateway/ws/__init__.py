"""The WebSocket endpoints speaking protocol v1: the customer's widget
(:mod:`gateway.ws.customer`), the agent's console (:mod:`gateway.ws.agent`), the sealed
connection both use, and the gap-free feed of a chat's messages to one connection."""
