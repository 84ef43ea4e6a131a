"""The gateway's HTTP surface: the JSON API by resource, the operator and inbound plugin
APIs, the web pages, health probes and the OpenAPI contract. :mod:`gateway.http.routes`
registers every route; :mod:`gateway.http.plumbing` holds what all handlers share."""
