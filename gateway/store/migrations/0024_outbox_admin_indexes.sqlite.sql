-- cipherdesk: compatible-with-previous
-- (indexes only: the previous release neither needs nor minds them)
-- Keep in step with the other engine's twin.
-- An admin lists a tenant's dead letters oldest first and counts its rows per state
-- (gateway/store/_outbox_admin.py); through these instead of reading all of the tenant's
-- outbox rows, delivered ones included, in id order. Delivered rows have theirs (0023).
CREATE INDEX outbox_dead_listing ON outbox (tenant_id, id) WHERE state = 'dead';
CREATE INDEX outbox_pending_tenant ON outbox (tenant_id, id) WHERE state = 'pending';
