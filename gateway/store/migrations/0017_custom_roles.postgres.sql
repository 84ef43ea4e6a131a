-- cipherdesk: compatible-with-previous
-- (a new table and a new nullable column: the previous release never reads them)
-- Custom roles (issue 14.3). Keep in step with the other engine's twin.
-- A custom role narrows a built-in one: `base` is the built-in role it stands in for
-- (its tier for the passkey rule and dormancy; an agent holding it has agents.role =
-- base) and `permissions` (comma-separated permission names, never a comma inside one)
-- is a subset of the base's. Agents read it through a join, so an edit applies to every
-- holder at once.
CREATE TABLE custom_roles (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    base        TEXT NOT NULL CHECK (base IN ('agent', 'supervisor', 'admin')),
    permissions TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
-- The custom role an agent holds (NULL: the built-in agents.role alone). Written only by
-- its own statement, never by a whole-row update.
ALTER TABLE agents ADD COLUMN custom_role TEXT;
